"""What the evidence says about the whole cluster, derived once: which stores are affected and
how, whether regions lost their Raft majority, PD's state, which sources were missing.

Pure functions of a ``DiagnosisInput``. The evidence renders these facts for the model and the
offline rules reason from them, so both read the same picture.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from controller.diagnosis.inputs import DiagnosisInput, KubeEvent, MetricSummary, PodState
from controller.diagnosis.liveness import (
    PDMemberLiveness,
    Source,
    StoreEvidence,
    StoreLiveness,
    derive_liveness,
    derive_pd_members,
)
from controller.images import is_pause_image
from controller.pd.models import StoreInfo, pod_of_address
from controller.pd.quorum import (
    estimate_majority,
    is_tiflash,
    region_peers,
    regions_losing_majority,
    regions_one_loss_from_majority,
)
from controller.tickets.models import TicketStatus

# A process start counts as a restart in this incident when it is at most this long before the
# ticket opened (a restart follows the failure the ticket is about; the slack covers a restart
# so fast that the monitor's first signal was the restart itself). Wider, and every store of a
# freshly started cluster would look restarted.
RESTART_SLACK_BEFORE_TICKET = 15.0
CRASH_EVENT_REASONS = ("BackOff", "CrashLoopBackOff")
OOM_REASONS = ("OOMKilling", "OOMKilled")
RESOURCE_REASONS = (*OOM_REASONS, "Evicted", "FreeDiskSpaceFailed", "EvictionThresholdMet")
NODE_FAILURE_REASONS = (
    "NodeNotReady",
    "NodeNotSchedulable",
    "NodeShutdown",
    "NodeLost",
    "TaintManagerEviction",
)
# A pod that cannot start for a reason of its spec (a missing ConfigMap key, a bad image).
CONFIG_WAITING_REASONS = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "ErrImagePull",
    "ImagePullBackOff",
)
STORE_SIGNALS = frozenset({"store_unreachable", "store_restarted", "store_disconnected", "store_down"})


class StoreFact(BaseModel):
    """One store, as every source sees it."""

    store_id: int | None
    pod: str
    state: str = "unknown"  # PD's state_name; "unknown" when PD could not be asked
    heartbeat_age: float | None = None
    liveness: StoreLiveness = Field(default_factory=StoreLiveness)
    pod_state: PodState | None = None
    reasons: list[str] = Field(default_factory=list)  # why it counts as affected

    @property
    def affected(self) -> bool:
        return bool(self.reasons)

    @property
    def restarted(self) -> bool:
        return self.liveness.restarted.verdict is True

    @property
    def running(self) -> bool | None:
        """True: its process answers now; False: it does not; None: no source can tell."""
        return self.liveness.alive.verdict

    @property
    def running_seen(self) -> str | None:
        """Which source decided ``running``, in words ("Prometheus still scrapes it")."""
        decided = self.liveness.alive.first()
        return decided.words if decided else None

    @property
    def scrape_failed(self) -> bool | None:
        """A Prometheus scrape failed in the window; None: no scrape series."""
        scrape = self.liveness.reachable_from_monitor.first(Source.PROMETHEUS)
        return None if scrape is None else not scrape.value

    @property
    def reported_unreachable(self) -> float:
        return self.liveness.peer_reports

    @property
    def gone(self) -> bool:
        """Its replicas cannot vote now: PD lost its heartbeats, or its process is not running.
        (An Offline store is being drained but still serves; a Tombstone holds no replica.)"""
        return self.state in ("Disconnected", "Down") or self.running is False


class ClusterFacts(BaseModel):
    ticket_store: StoreFact | None = None
    affected: list[StoreFact] = Field(default_factory=list)  # the ticket's store first
    stores_known: int | None = None
    regions_known: int | None = None
    regions_without_majority: list[int] = Field(default_factory=list)
    regions_one_loss_away: list[int] = Field(default_factory=list)
    # Without PD's region list: what the stores and max-replicas alone say about the majority.
    majority_estimate: str | None = None
    majority_lost_estimated: bool | None = None
    pd_answered: bool = False
    pd_members: int = 0
    pd_members_unhealthy: list[str] = Field(default_factory=list)
    pd_leader: str | None = None
    pd_member_liveness: list[PDMemberLiveness] = Field(default_factory=list)
    other_open_tickets: list[str] = Field(default_factory=list)
    node_failures: list[str] = Field(default_factory=list)
    resource_pressure: list[str] = Field(default_factory=list)  # about the affected pods or nodes
    crash_loops: list[str] = Field(default_factory=list)
    config_errors: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)  # sources that could not be asked or were empty

    @property
    def affected_pods(self) -> list[str]:
        return [f.pod for f in self.affected]

    @property
    def majority_known(self) -> bool:
        """PD's regions were read, or the stores alone decide it."""
        return self.regions_known is not None or self.majority_lost_estimated is not None

    @property
    def majority_lost(self) -> bool:
        return bool(self.regions_without_majority) or self.majority_lost_estimated is True


def _metric_pod(m: MetricSummary) -> str | None:
    if "pod" in m.labels:
        return m.labels["pod"]
    if "instance" in m.labels:
        return pod_of_address(m.labels["instance"])[0]
    return None


def _by_pod(metrics: list[MetricSummary], name: str) -> dict[str, MetricSummary]:
    return {pod: m for m in metrics if m.name == name and (pod := _metric_pod(m))}


def _reports_by_store(metrics: list[MetricSummary]) -> dict[int, MetricSummary]:
    """The survivors' unreachable reports about each store, summed over the reporting peers."""
    out: dict[int, MetricSummary] = {}
    for m in metrics:
        sid = m.labels.get("store_id", "")
        if m.name != "unreachable_reports" or not sid.isdigit():
            continue
        total = out.setdefault(int(sid), MetricSummary(name=m.name, labels={"store_id": sid}, delta=0.0))
        total.delta = (total.delta or 0.0) + (m.delta or 0.0)
    return out


def _store_fact(
    data: DiagnosisInput,
    evidence: StoreEvidence,
    open_tickets: list[str],
) -> StoreFact:
    since = data.ticket.opened_at - RESTART_SLACK_BEFORE_TICKET
    store, pod_state = evidence.store, evidence.pod_state
    fact = StoreFact(
        store_id=store.id if store else data.ticket.store_id,
        pod=evidence.pod,
        pod_state=pod_state,
        liveness=derive_liveness(data, evidence, since),
    )
    reasons = fact.reasons
    if store is not None:
        fact.state = store.store.state_name
        if store.store.last_heartbeat:
            fact.heartbeat_age = max(0.0, data.now - store.store.last_heartbeat_seconds)
        if fact.state not in ("Up", "Tombstone"):
            reasons.append(f"PD says {fact.state}")
    if fact.restarted:
        reasons.append("its process restarted")
    if fact.scrape_failed:
        reasons.append("scrapes failed" + ("" if fact.running else " and still fail"))
    probe = fact.liveness.alive.first(Source.TICKET)
    if probe is not None and probe.value:
        reasons.append(probe.words)
    if fact.reported_unreachable:
        reasons.append(f"peers reported it unreachable {fact.reported_unreachable:.0f} times")
    if pod_state is not None and (pod_state.waiting_reason or not pod_state.ready):
        reasons.append(f"pod {pod_state.phase} {pod_state.waiting_reason or 'not Ready'}".strip())
    for t in open_tickets:
        reasons.append(f"open ticket {t}")
    if evidence.on_ticket:
        ticket_signals = sorted({o.signal for o in data.ticket.observations} & STORE_SIGNALS)
        if ticket_signals:
            reasons.append("ticket: " + ", ".join(ticket_signals))
    # The same reason from two sources reads once.
    fact.reasons = list(dict.fromkeys(reasons))
    return fact


def _store_evidence(
    data: DiagnosisInput,
    store: StoreInfo | None,
    pod: str,
    on_ticket: bool,
    up: dict[str, MetricSummary],
    starts: dict[str, MetricSummary],
    reports: MetricSummary | None,
    pods: dict[str, PodState],
) -> StoreEvidence:
    pod_state = pods.get(pod)
    node = pod_state.node if pod_state is not None else ""
    return StoreEvidence(
        store=store,
        pod=pod,
        on_ticket=on_ticket,
        up=up.get(pod),
        start=starts.get(pod),
        peer_reports=reports,
        pod_state=pod_state,
        pressure_events=[e for e in data.events if _pressure_about(e, pod, node)],
    )


def _pressure_about(e: KubeEvent, pod: str, node: str) -> bool:
    if e.reason not in RESOURCE_REASONS:
        return False
    return _event_pod(e.object) == pod or bool(node and e.object == f"node/{node}")


def _event_pod(obj: str) -> str:
    kind, _, name = obj.partition("/")
    return name if kind == "pod" else ""


def _pd_facts(facts: ClusterFacts, data: DiagnosisInput) -> None:
    facts.pd_member_liveness = derive_pd_members(data)
    members = facts.pd_member_liveness
    facts.pd_members = len(data.pd.members) if data.pd is not None else 0
    facts.pd_members_unhealthy = [m.name for m in members if m.healthy.verdict is False] or [
        m.name for m in members if any(not f.value for f in m.healthy.findings)
    ]
    facts.pd_leader = next((m.name for m in members if m.leader), None)
    facts.pd_answered = data.pd is not None or data.stores is not None


def derive(data: DiagnosisInput) -> ClusterFacts:
    facts = ClusterFacts()
    t = data.ticket
    up = _by_pod(data.metrics, "up")
    starts = _by_pod(data.metrics, "process_start")
    reports = _reports_by_store(data.metrics)
    pods = {p.name: p for p in data.pods}
    open_by_store: dict[int, list[str]] = {}
    for other in data.recent_tickets:
        if other.id != t.id and other.status == TicketStatus.OPEN:
            label = f"#{other.id} {other.invariant} on {other.subject}"
            if other.store_id is not None:
                open_by_store.setdefault(other.store_id, []).append(label)
            else:
                facts.other_open_tickets.append(label)

    store_facts: list[StoreFact] = []
    if data.stores is not None:
        facts.stores_known = len(data.stores)
        for s in data.stores:
            is_ticket_store = s.id == t.store_id or s.pod == t.pod
            evidence = _store_evidence(data, s, s.pod, is_ticket_store, up, starts, reports.get(s.id), pods)
            store_facts.append(_store_fact(data, evidence, open_by_store.get(s.id, [])))
            facts.other_open_tickets += open_by_store.get(s.id, [])
    elif t.pod:
        evidence = _store_evidence(data, None, t.pod, True, up, starts, reports.get(t.store_id or -1), pods)
        store_facts.append(_store_fact(data, evidence, []))
    on_ticket = [
        f for f in store_facts if (f.store_id is not None and f.store_id == t.store_id) or f.pod == t.pod
    ]
    facts.ticket_store = on_ticket[0] if on_ticket else None
    facts.affected = sorted(
        (f for f in store_facts if f.affected), key=lambda f: (f is not facts.ticket_store, f.store_id or 0)
    )

    if data.regions is not None and data.stores is not None:
        peers = region_peers(data.regions, data.stores)
        gone = frozenset(f.store_id for f in store_facts if f.gone and f.store_id is not None)
        facts.regions_known = len(peers)
        facts.regions_without_majority = regions_losing_majority(peers, frozenset(), gone)
        lost = set(facts.regions_without_majority)
        facts.regions_one_loss_away = [
            r for r in regions_one_loss_from_majority(peers, gone) if r not in lost
        ]

    elif data.stores is not None:
        voting = [s for s in data.stores if not is_tiflash(s) and s.store.state_name != "Tombstone"]
        voting_ids = {s.id for s in voting}
        away = sum(1 for f in store_facts if f.gone and f.store_id in voting_ids)
        estimate = estimate_majority(len(voting), away, data.max_replicas)
        facts.majority_estimate, facts.majority_lost_estimated = estimate.words, estimate.lost

    _pd_facts(facts, data)

    affected_pods = {f.pod for f in facts.affected} | ({t.pod} if t.pod else set())
    nodes = {p.node for p in data.pods if p.name in affected_pods and p.node}
    for e in data.events:
        about_pod = _event_pod(e.object)
        about_node = e.object.startswith("node/") and (not nodes or e.object.removeprefix("node/") in nodes)
        relevant = about_pod in affected_pods or about_node
        if not relevant:
            continue
        text = f"{e.reason} on {e.object}: {e.message}"
        if e.reason in NODE_FAILURE_REASONS:
            facts.node_failures.append(text)
        elif e.reason in RESOURCE_REASONS:
            facts.resource_pressure.append(text)
        elif e.reason in CRASH_EVENT_REASONS:
            facts.crash_loops.append(text)
        elif any(r in e.message for r in CONFIG_WAITING_REASONS):
            facts.config_errors.append(text)
    for p in data.pods:
        if p.name not in affected_pods:
            continue
        if p.last_termination_reason in OOM_REASONS:
            facts.resource_pressure.append(f"pod/{p.name} last terminated {p.last_termination_reason}")
        if p.waiting_reason in CONFIG_WAITING_REASONS:
            facts.config_errors.append(f"pod/{p.name} waiting: {p.waiting_reason}")
        elif is_pause_image(p.image):
            # A pause image in TiKV's place cannot start TiKV's command (tidb-operator's start
            # script): its back-off is the store held stopped, not TiKV failing at start.
            continue
        elif p.waiting_reason == "CrashLoopBackOff" or p.restarts >= 3:
            facts.crash_loops.append(
                f"pod/{p.name} {p.waiting_reason or 'restarting'}, {p.restarts} restarts, last exit "
                f"{p.last_termination_reason or '?'} ({p.last_exit_code})"
            )

    if data.stores is None:
        facts.missing.append("PD (stores)")
    if data.regions is None:
        facts.missing.append("PD (regions)")
    if not data.metrics_available:
        facts.missing.append("Prometheus")
    elif not data.metrics:
        facts.missing.append("Prometheus (no series)")
    if not data.events:
        facts.missing.append("Kubernetes events (none)")
    return facts
