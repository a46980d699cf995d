"""Liveness facts: for one store, what each source says about whether its process runs, whether it
restarted, who can reach it and what pressure it is under, each answer with the source it rests on.

The rules decide from the verdicts; the evidence shows the findings behind them, so a summary
says only what some source supports ("stopped" only when a source saw the process gone,
"restarted" only when one saw a new process). A question no source can answer stays ``None``
with the reason, which is different from "no".
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from controller.diagnosis.inputs import DiagnosisInput, KubeEvent, MetricSummary, PodState
from controller.images import is_pause_image
from controller.pd.models import StoreInfo

# PD marks a store Disconnected after 20 s without a heartbeat.
HEARTBEAT_STALE_AFTER = 20.0


class Source(StrEnum):
    """Where a finding comes from: the logical key of the evidence item that shows it."""

    TICKET = "ticket"  # the monitor's own observations (its status-port probe, PD, Prometheus)
    PD = "stores"  # PD's store list: state, heartbeats, start time
    PD_MEMBERS = "pd"  # PD's health and members endpoints
    PROMETHEUS = "metrics"
    PODS = "pods"
    EVENTS = "events"


class Finding(BaseModel):
    """One source's answer to one question."""

    source: Source
    value: bool
    words: str


class Answer(BaseModel):
    """Every source's answer to one question, strongest first, and the verdict they give."""

    findings: list[Finding] = Field(default_factory=list)
    verdict: bool | None = None
    unknown_because: str | None = None  # set when no source could answer

    def add(self, source: Source, value: bool, words: str) -> None:
        self.findings.append(Finding(source=source, value=value, words=words))

    def settle(self, unknown_because: str) -> Answer:
        """The strongest finding decides; with none, the answer is unknown for this reason."""
        if self.findings:
            self.verdict = self.findings[0].value
        else:
            self.unknown_because = unknown_because
        return self

    def first(self, source: Source | None = None) -> Finding | None:
        return next((f for f in self.findings if source is None or f.source == source), None)


class PressureKind(StrEnum):
    MEMORY = "memory"
    DISK = "disk"
    CPU = "cpu"
    UNKNOWN = "unknown"


class Pressure(BaseModel):
    kind: PressureKind
    source: Source
    words: str


class StoreLiveness(BaseModel):
    """The four questions a responder asks about a store, answered from every source."""

    alive: Answer = Field(default_factory=Answer)  # does its process run now?
    restarted: Answer = Field(default_factory=Answer)  # did a new process start in the incident?
    reachable_from_pd: Answer = Field(default_factory=Answer)
    reachable_from_peers: Answer = Field(default_factory=Answer)
    reachable_from_monitor: Answer = Field(default_factory=Answer)  # over the whole window
    pressure: list[Pressure] = Field(default_factory=list)
    peer_reports: float = 0.0  # survivors' unreachable reports about it in the window


def pressure_kind(reason: str, message: str) -> PressureKind:
    """Which resource an eviction, OOM or disk event is about, from Kubernetes' own wording
    (the kubelet names the resource: "The node was low on resource: memory", "ephemeral-storage")."""
    text = f"{reason} {message}".lower()
    if "oom" in text or "memory" in text:
        return PressureKind.MEMORY
    if any(w in text for w in ("disk", "ephemeral-storage", "nodefs", "imagefs", "storage")):
        return PressureKind.DISK
    if "cpu" in text:
        return PressureKind.CPU
    return PressureKind.UNKNOWN


class StoreEvidence(BaseModel):
    """What the sources hold about one store, gathered by pod and store id."""

    store: StoreInfo | None
    pod: str
    on_ticket: bool
    up: MetricSummary | None = None  # Prometheus' ``up`` for its pod
    start: MetricSummary | None = None  # ``process_start_time_seconds``
    peer_reports: MetricSummary | None = None  # survivors' unreachable reports about it
    pod_state: PodState | None = None
    pressure_events: list[KubeEvent] = Field(default_factory=list)


def _restarted(data: DiagnosisInput, ev: StoreEvidence, since: float) -> Answer:
    answer = Answer()
    if ev.store is not None and ev.store.store.start_timestamp >= since:
        answer.add(Source.PD, True, "PD has a new start time for it")
    if ev.start is not None and ev.start.delta:
        answer.add(Source.PROMETHEUS, True, "its process start time changed")
    pod = ev.pod_state
    paused = pod is not None and is_pause_image(pod.image)
    if (
        pod is not None
        and pod.last_finished_at
        and pod.last_finished_at >= since
        and not pod.waiting_reason
        and not paused  # its container restarted into a pause image: TiKV stopped, not restarted
    ):
        answer.add(Source.PODS, True, f"its container restarted ({pod.last_termination_reason or 'exited'})")
    # A replaced pod runs a new process once its container runs; a replacement still pending has
    # not started one yet (the old process is gone: see ``_alive``).
    if pod is not None and pod.created_at and pod.created_at >= since and pod.phase == "Running":
        answer.add(Source.PODS, True, "its pod was replaced")
    if ev.on_ticket and any(o.signal == "store_restarted" for o in data.ticket.observations):
        answer.add(Source.TICKET, True, "the monitor saw it restart")
    if answer.findings:
        answer.verdict = True
    elif ev.store is not None or ev.start is not None or ev.pod_state is not None:
        # Sources that would show a restart were read and show none.
        answer.verdict = False
    else:
        answer.unknown_because = "no start time (PD, Prometheus) nor pod history was available"
    return answer


def _alive(data: DiagnosisInput, ev: StoreEvidence, restarted: bool) -> Answer:
    """Strongest first: the monitor's probe answering now, Prometheus' last scrape, PD's fresh
    start time, the monitor's failed probe (unless a restart came after it), a replacement pod
    still pending, PD's fresh heartbeats. A Ready pod is no finding: a pod can be Ready while its
    TiKV process is gone (a paused container), so readiness never says the process runs."""
    answer = Answer()
    observations = data.ticket.observations if ev.on_ticket else []
    state = ev.store.store.state_name if ev.store is not None else "unknown"
    if any(o.source == "probe" and o.signal != "store_unreachable" for o in observations):
        answer.add(Source.TICKET, True, "its status port still answers")
    if ev.up is not None and ev.up.after is not None:
        if ev.up.after >= 1:
            answer.add(Source.PROMETHEUS, True, "Prometheus still scrapes it")
        else:
            answer.add(Source.PROMETHEUS, False, "Prometheus cannot scrape it")
    if restarted and state == "Up":
        answer.add(Source.PD, True, "PD has it Up with a new start time")
    if not restarted and any(o.signal == "store_unreachable" for o in observations):
        answer.add(Source.TICKET, False, "its status port does not answer")
    pod = ev.pod_state
    if pod is not None and pod.phase == "Pending":
        answer.add(Source.PODS, False, f"its pod is Pending ({pod.waiting_reason or 'not started'})")
    elif pod is not None and pod.waiting_reason:
        # A container the kubelet keeps failing to start (e.g. an image that cannot run the
        # container's command) ran no new process: it stopped, it did not restart.
        why = f", last {pod.last_termination_reason}" if pod.last_termination_reason else ""
        answer.add(Source.PODS, False, f"its container is not running ({pod.waiting_reason}{why})")
    elif pod is not None and is_pause_image(pod.image):
        # The kubelet runs a pause image in TiKV's place: whatever its readiness, no TiKV process.
        answer.add(Source.PODS, False, f"its container runs a pause image ({pod.image}) in TiKV's place")
    return answer.settle("no source reads the process itself (no scrape, no probe, no restart seen)")


def _reachable_from_pd(data: DiagnosisInput, ev: StoreEvidence) -> Answer:
    answer = Answer()
    if ev.store is None:
        return answer.settle("PD's store list was not available")
    s = ev.store.store
    age = max(0.0, data.now - s.last_heartbeat_seconds) if s.last_heartbeat else None
    if s.state_name in ("Disconnected", "Down"):
        answer.add(Source.PD, False, f"PD marks it {s.state_name}")
    elif age is not None and age > HEARTBEAT_STALE_AFTER:
        answer.add(Source.PD, False, f"its last heartbeat reached PD {age:.0f} s ago")
    elif age is not None:
        answer.add(Source.PD, True, f"PD heard its heartbeat {age:.0f} s ago")
    return answer.settle("PD has no heartbeat time for it")


def _reachable_from_peers(ev: StoreEvidence) -> Answer:
    answer = Answer()
    reports = ev.peer_reports
    if reports is not None and reports.delta:
        answer.add(Source.PROMETHEUS, False, f"peers reported it unreachable {reports.delta:.0f} times")
    elif reports is not None:
        answer.add(Source.PROMETHEUS, True, "no peer reported it unreachable")
    return answer.settle("no series of the peers' unreachable reports")


def _reachable_from_monitor(data: DiagnosisInput, ev: StoreEvidence) -> Answer:
    answer = Answer()
    if ev.up is not None and ev.up.min is not None:
        if ev.up.min == 0:
            answer.add(Source.PROMETHEUS, False, "a Prometheus scrape of it failed")
        else:
            answer.add(Source.PROMETHEUS, True, "every Prometheus scrape of it succeeded")
    probes = [o for o in data.ticket.observations if o.source == "probe"] if ev.on_ticket else []
    if any(o.signal == "store_unreachable" for o in probes):
        answer.add(Source.TICKET, False, "the monitor's probe could not reach it")
    elif probes:
        answer.add(Source.TICKET, True, "the monitor's probe reached it")
    if answer.findings:
        answer.verdict = all(f.value for f in answer.findings)
    else:
        answer.unknown_because = "no scrape series and no probe of it"
    return answer


def derive_liveness(data: DiagnosisInput, ev: StoreEvidence, since: float) -> StoreLiveness:
    """``since``: the earliest moment a new process counts as a restart in this incident."""
    restarted = _restarted(data, ev, since)
    return StoreLiveness(
        alive=_alive(data, ev, restarted.verdict is True),
        restarted=restarted,
        reachable_from_pd=_reachable_from_pd(data, ev),
        reachable_from_peers=_reachable_from_peers(ev),
        reachable_from_monitor=_reachable_from_monitor(data, ev),
        pressure=[
            Pressure(
                kind=pressure_kind(e.reason, e.message),
                source=Source.EVENTS,
                words=f"{e.reason} on {e.object}",
            )
            for e in ev.pressure_events
        ]
        + (
            [
                Pressure(
                    kind=pressure_kind(ev.pod_state.last_termination_reason, ""),
                    source=Source.PODS,
                    words=f"last terminated {ev.pod_state.last_termination_reason}",
                )
            ]
            if ev.pod_state is not None and "OOM" in ev.pod_state.last_termination_reason
            else []
        ),
        peer_reports=(ev.peer_reports.delta or 0.0) if ev.peer_reports is not None else 0.0,
    )


class PDMemberLiveness(BaseModel):
    """One PD member: is it healthy, does it lead, did it lead before the incident."""

    name: str
    healthy: Answer = Field(default_factory=Answer)
    leader: bool = False
    lost_leadership: bool = False


def derive_pd_members(data: DiagnosisInput) -> list[PDMemberLiveness]:
    """PD's members from PD's own health answer first, then as the ticket's observations name
    them (a member the monitor saw unhealthy, the leaders of a hand-over): where PD cannot be
    read now, its members are still named, never left empty."""
    members: dict[str, PDMemberLiveness] = {}

    def member(name: str) -> PDMemberLiveness:
        return members.setdefault(name, PDMemberLiveness(name=name))

    if data.pd is not None:
        for m in data.pd.members:
            member(m.name).healthy.add(
                Source.PD_MEMBERS,
                m.health,
                "PD's health check passes" if m.health else "PD's health check fails",
            )
        if data.pd.leader:
            member(data.pd.leader).leader = True
    for o in data.ticket.observations:
        if o.signal == "pd_unhealthy" and isinstance(o.data.get("members"), list):
            for name in map(str, o.data["members"]):
                member(name).healthy.add(Source.TICKET, False, "the monitor saw it unhealthy")
    changes = sorted(
        (o for o in data.ticket.observations if o.signal == "pd_leader_changed"), key=lambda o: o.at
    )
    for o in changes:
        if o.data.get("previous"):
            member(str(o.data["previous"])).lost_leadership = True
    if changes and changes[-1].data.get("current") and not any(m.leader for m in members.values()):
        member(str(changes[-1].data["current"])).leader = True
    for fact in members.values():
        fact.healthy.settle("PD's health was not read and the monitor saw nothing of it")
    return list(members.values())
