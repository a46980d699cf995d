"""The ChaosDemo's status as typed data.

Times are floats (seconds since the epoch) in Python and RFC 3339 strings on the wire, so a step
compares numbers and the API server stores what ``kubectl`` shows. Every model accepts the
camelCase names of the CRD and ignores fields it does not know (kopf's own bookkeeping).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from controller.operator.model import DrillSpec, Phase, Verdict
from controller.timefmt import format_rfc3339, parse_optional_rfc3339


def _parse_time(value: Any) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    return parse_optional_rfc3339(str(value))


def _format_time(value: float | None) -> str | None:
    return None if value is None else format_rfc3339(value, digits=3)


def as_written(value: float) -> float:
    """A moment as the API will hold it (milliseconds): figures derived from moments use this,
    so a reader subtracting two timestamps of the status gets the figure the status reports."""
    return parse_optional_rfc3339(format_rfc3339(value, digits=3)) or 0.0


# A moment: a float in Python, RFC 3339 with milliseconds in the API.
Moment = Annotated[float | None, BeforeValidator(_parse_time), PlainSerializer(_format_time)]


class _Status(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", validate_assignment=True)

    def wire(self) -> dict[str, Any]:
        """What goes into a merge patch: camelCase, times as strings, unset fields left out."""
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class Condition(_Status):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: Moment = Field(default=None, alias="lastTransitionTime")


class RunSnapshot(_Status):
    """What a run uses from start to end, whatever happens to the live spec meanwhile."""

    generation: int
    spec: dict[str, Any]
    target_namespace: str = Field(alias="targetNamespace")
    pd_address: str = Field(alias="pdAddress")
    # The name the monitor's tickets carry for this cluster (PD's cluster id), pinned at the
    # first preflight PD answers.
    ticket_cluster: str = Field(default="", alias="ticketCluster")
    # target.tls: the Secret (namespace/name) PD is reached with; empty: plain or the
    # controller's own TLS settings.
    tls_secret: str = Field(default="", alias="tlsSecret")

    def drill_spec(self) -> DrillSpec:
        return DrillSpec.model_validate(self.spec)


class Victim(_Status):
    namespace: str
    pod: str
    uid: str
    node: str | None = None
    # The TiKV store the pod runs (None for a PD member, ``pd_member``).
    store_id: int | None = Field(default=None, alias="storeId")
    store_address: str | None = Field(default=None, alias="storeAddress")
    # pd-leader-kill: the PD member the pod runs, the leader when it was chosen.
    pd_member: str | None = Field(default=None, alias="pdMember")
    status_address: str | None = Field(default=None, alias="statusAddress")
    # Regions the store led before the kill: "leaders back" is judged against it.
    leaders_before: int | None = Field(default=None, alias="leadersBefore")
    # The pod's manifest, kept (redacted) only for a bare pod, so it can be recreated.
    manifest: str | None = None
    # store-outage: the TiKV container (index and name) and its image, saved before the swap.
    container_index: int | None = Field(default=None, alias="containerIndex")
    container: str | None = None
    original_image: str | None = Field(default=None, alias="originalImage")
    pause_image: str | None = Field(default=None, alias="pauseImage")
    # store-outage under tidb-operator v2: the Cluster (in the victim's namespace) whose
    # reconciliation is paused for the outage, so its operator does not put the image back.
    paused_cluster: str | None = Field(default=None, alias="pausedCluster")
    # network-partition: the NetworkPolicy (named before it is created), the label that names this
    # pod alone, and the key the cluster's components are labelled by.
    partition_policy: str | None = Field(default=None, alias="partitionPolicy")
    partition_selector: dict[str, str] | None = Field(default=None, alias="partitionSelector")
    component_label: str | None = Field(default=None, alias="componentLabel")

    @property
    def outage(self) -> bool:
        return self.original_image is not None

    @property
    def partitioned(self) -> bool:
        return self.partition_policy is not None


class Timeline(_Status):
    started_at: Moment = Field(default=None, alias="startedAt")
    queued_at: Moment = Field(default=None, alias="queuedAt")
    locked_at: Moment = Field(default=None, alias="lockedAt")
    injecting_at: Moment = Field(default=None, alias="injectingAt")
    # The first moment the destructive call was about to be sent (written, with the object's
    # resourceVersion as precondition, right before it): after a crash, its presence says the
    # call may have gone out, so a pod found gone or replaced was our own doing.
    injection_sent_at: Moment = Field(default=None, alias="injectionSentAt")
    injected_at: Moment = Field(default=None, alias="injectedAt")
    detected_at: Moment = Field(default=None, alias="detectedAt")
    diagnosed_at: Moment = Field(default=None, alias="diagnosedAt")
    pod_ready_at: Moment = Field(default=None, alias="podReadyAt")
    store_up_at: Moment = Field(default=None, alias="storeUpAt")
    regions_healthy_at: Moment = Field(default=None, alias="regionsHealthyAt")
    recovered_at: Moment = Field(default=None, alias="recoveredAt")
    leaders_balanced_at: Moment = Field(default=None, alias="leadersBalancedAt")
    # The victim's regions have new leaders: PD shows none of them led by the victim any more.
    leaders_elected_at: Moment = Field(default=None, alias="leadersElectedAt")
    # pd-leader-kill: PD names a leader other than the victim; the victim member is healthy again.
    pd_leader_elected_at: Moment = Field(default=None, alias="pdLeaderElectedAt")
    pd_member_healthy_at: Moment = Field(default=None, alias="pdMemberHealthyAt")
    # store-outage: the swap back to the original image is about to be sent, and was done.
    restoring_at: Moment = Field(default=None, alias="restoringAt")
    restored_at: Moment = Field(default=None, alias="restoredAt")
    abort_requested_at: Moment = Field(default=None, alias="abortRequestedAt")
    completed_at: Moment = Field(default=None, alias="completedAt")


class DrillMetrics(_Status):
    time_to_detect_seconds: float | None = Field(default=None, alias="timeToDetectSeconds")
    time_to_recover_seconds: float | None = Field(default=None, alias="timeToRecoverSeconds")
    pod_ready_seconds: float | None = Field(default=None, alias="podReadySeconds")
    store_up_seconds: float | None = Field(default=None, alias="storeUpSeconds")
    regions_healthy_seconds: float | None = Field(default=None, alias="regionsHealthySeconds")
    leaders_balanced_seconds: float | None = Field(default=None, alias="leadersBalancedSeconds")
    # The printer columns' text ("2.1s").
    time_to_detect: str | None = Field(default=None, alias="timeToDetect")
    time_to_recover: str | None = Field(default=None, alias="timeToRecover")


class ImpactFigures(_Status):
    """What clients felt in one window, from TiKV's gRPC metrics."""

    requests_per_second: float | None = Field(default=None, alias="requestsPerSecond")
    error_ratio: float | None = Field(default=None, alias="errorRatio")  # failed / all messages
    p99_seconds: float | None = Field(default=None, alias="p99Seconds")


class WorstMoment(_Status):
    at: Moment = None
    error_ratio: float | None = Field(default=None, alias="errorRatio")
    p99_seconds: float | None = Field(default=None, alias="p99Seconds")


class StoreLeaders(_Status):
    before: float | None = None
    min: float | None = None
    after: float | None = None


class ClientFigures(_Status):
    """Requests TiKV's own client sent in a window, and what they met."""

    requests: int
    failed: int  # the client gave up with an error
    stalled: int  # no answer within the prober's deadline
    error_ratio: float = Field(alias="errorRatio")  # (failed + stalled) / requests
    p50_seconds: float = Field(alias="p50Seconds")
    p99_seconds: float = Field(alias="p99Seconds")


class RegionUnavailable(_Status):
    region_id: int = Field(alias="regionId")
    unavailable_seconds: float = Field(alias="unavailableSeconds")
    failed: int = 0
    stalled: int = 0


class ClientWrites(_Status):
    """The prober's writes under spec.impact.probe.writes, alone, and the keys it put back."""

    key_prefix: str = Field(alias="keyPrefix")
    regions: int = 0  # written, one key each
    written: int | None = None  # of those keys, how many had a write answered
    foreign_keys: int = Field(default=0, alias="foreignKeys")  # held someone else's value: left alone
    before: ClientFigures | None = None
    during: ClientFigures | None = None
    after: ClientFigures | None = None
    removed: int | None = None  # keys the prober wrote, deleted at the end
    error: str | None = None  # why they could not all be removed


class ClientImpact(_Status):
    """What a client felt, from TiKV's own client reading one key per region (the prober)."""

    source: str = "tikv-client"
    regions: int = 0  # probed
    requests_per_second: float = Field(default=0.0, alias="requestsPerSecond")
    deadline_seconds: float = Field(default=0.0, alias="deadlineSeconds")
    # The longest gap measured between two reads of one region during the drill (regions / rate
    # when the prober kept its cadence): every figure's edges are known to within it.
    probe_interval_seconds: float = Field(default=0.0, alias="probeIntervalSeconds")
    before: ClientFigures | None = None
    during: ClientFigures | None = None
    after: ClientFigures | None = None
    # Seconds from the kill in which some region answered nothing.
    unavailable_seconds: float | None = Field(default=None, alias="unavailableSeconds")
    regions_unavailable: int = Field(default=0, alias="regionsUnavailable")
    # Regions still not answering when the prober stopped: their seconds are a lower bound.
    regions_still_unavailable: int = Field(default=0, alias="regionsStillUnavailable")
    unavailable_regions: list[RegionUnavailable] = Field(default_factory=list, alias="unavailableRegions")
    writes: ClientWrites | None = None
    error: str | None = None


class Impact(_Status):
    """What the drill cost the application: a baseline before the kill, the drill (kill to the
    store whole again) and after, from Prometheus; and the victim's regions without a leader."""

    baseline_from: Moment = Field(default=None, alias="baselineFrom")
    until: Moment = None
    # One point per Prometheus scrape of the TiKV job: the figures are accurate to this much.
    resolution_seconds: float | None = Field(default=None, alias="resolutionSeconds")
    before: ImpactFigures | None = None
    during: ImpactFigures | None = None
    after: ImpactFigures | None = None
    worst: WorstMoment | None = None
    # Seconds of the drill window in which some client requests failed.
    unavailable_seconds: float | None = Field(default=None, alias="unavailableSeconds")
    regions_without_leader: int | None = Field(default=None, alias="regionsWithoutLeader")
    leaderless_seconds: float | None = Field(default=None, alias="leaderlessSeconds")
    leaders_by_store: dict[str, StoreLeaders] | None = Field(default=None, alias="leadersByStore")
    # [seconds from the kill, requests/s, error ratio, p99 seconds], at most IMPACT_POINTS rows.
    series: list[list[float | None]] | None = None
    error: str | None = None
    # The client's own view (spec.impact.probe); the figures above are the server's (Prometheus).
    client: ClientImpact | None = None
    # Said when no client sent a request during the drill: then nothing above is the cost.
    note: str | None = None


class Incident(_Status):
    ticket_id: int = Field(alias="ticketId")
    invariant: str
    severity: str
    detected_by: str = Field(alias="detectedBy")
    signals: list[str] = Field(default_factory=list)


class DiagnosisSummary(_Status):
    summary: str
    root_cause_category: str = Field(alias="rootCauseCategory")
    severity: str
    confidence: str
    diagnoser: str
    model: str | None = None
    blind: bool = True
    prompt_version: str | None = Field(default=None, alias="promptVersion")
    matches_injected_fault: bool = Field(alias="matchesInjectedFault")
    grade_reason: str = Field(default="", alias="gradeReason")
    fallback_reason: str | None = Field(default=None, alias="fallbackReason")


class HistoryEntry(_Status):
    generation: int | None = None
    phase: str | None = None
    verdict: str | None = None
    reason: str | None = None
    victim: str | None = None
    ticket_id: int | None = Field(default=None, alias="ticketId")
    time_to_detect_seconds: float | None = Field(default=None, alias="timeToDetectSeconds")
    time_to_recover_seconds: float | None = Field(default=None, alias="timeToRecoverSeconds")
    root_cause_category: str | None = Field(default=None, alias="rootCauseCategory")
    started_at: Moment = Field(default=None, alias="startedAt")
    completed_at: Moment = Field(default=None, alias="completedAt")


class IgnoredAlertStatus(_Status):
    """An alert that fired during the drill without being about it (another store, another app)."""

    alert: str
    reason: str
    firing_at: Moment = Field(default=None, alias="firingAt")


class SourceStatus(_Status):
    """How one detection source answered: Watching until it does; Detected, Missed or Error."""

    name: str
    type: str
    required: bool = True
    state: str = "Watching"
    alert: str | None = None
    ticket_id: int | None = Field(default=None, alias="ticketId")
    labels: dict[str, str] | None = None
    pending_at: Moment = Field(default=None, alias="pendingAt")
    firing_at: Moment = Field(default=None, alias="firingAt")
    # alertmanager-notification: the paged alert's startsAt (firingAt is when the page arrived).
    alert_started_at: Moment = Field(default=None, alias="alertStartedAt")
    seen_at: Moment = Field(default=None, alias="seenAt")
    ttd_seconds: float | None = Field(default=None, alias="ttdSeconds")
    why: str | None = None
    # The victim pod the detecting alert names (None: a cluster-level alert, or the ticket).
    victim: str | None = None
    ignored: list[IgnoredAlertStatus] | None = None


class DetectionStatus(_Status):
    sources: list[SourceStatus] = Field(default_factory=list)


class DrillStatus(_Status):
    phase: Phase | None = None
    verdict: Verdict | None = None
    reason: str | None = None
    message: str | None = None
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    conditions: list[Condition] = Field(default_factory=list)
    run: RunSnapshot | None = None
    victim: Victim | None = None
    # fault.count above one: every victim, the first of them also in ``victim``.
    victims: list[Victim] | None = None
    timeline: Timeline = Field(default_factory=Timeline)
    metrics: DrillMetrics = Field(default_factory=DrillMetrics)
    incident: Incident | None = None
    # Set when something beyond the drill's own fault went wrong after the kill: the run stops.
    safety_abort: str | None = Field(default=None, alias="safetyAbort")
    detection: DetectionStatus | None = None
    diagnosis: DiagnosisSummary | None = None
    impact: Impact | None = None
    history: list[HistoryEntry] = Field(default_factory=list)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> DrillStatus:
        return cls.model_validate(obj.get("status") or {})

    @property
    def all_victims(self) -> list[Victim]:
        if self.victims:
            return list(self.victims)
        return [self.victim] if self.victim else []

    def summary(self) -> HistoryEntry:
        """This run, compacted for ``history``."""
        return HistoryEntry(
            generation=self.observed_generation,
            phase=self.phase,
            verdict=self.verdict,
            reason=self.reason,
            victim=", ".join(v.pod for v in self.all_victims) or None,
            ticketId=self.incident.ticket_id if self.incident else None,
            timeToDetectSeconds=self.metrics.time_to_detect_seconds,
            timeToRecoverSeconds=self.metrics.time_to_recover_seconds,
            rootCauseCategory=self.diagnosis.root_cause_category if self.diagnosis else None,
            startedAt=self.timeline.started_at,
            completedAt=self.timeline.completed_at,
        )
