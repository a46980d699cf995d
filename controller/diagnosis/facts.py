"""What the evidence says about the whole cluster, derived once: which stores are affected and
how, whether regions lost their Raft majority, PD's state, which sources were missing.

Pure functions of a ``DiagnosisInput``. The evidence renders these facts for the model and the
offline rules reason from them, so both read the same picture.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from controller.diagnosis.inputs import DiagnosisInput, MetricSummary, PodState
from controller.pd.models import StoreInfo, pod_of_address
from controller.pd.quorum import (
    estimate_majority,
    is_tiflash,
    region_peers,
    regions_losing_majority,
    regions_one_loss_from_majority,
)
from controller.tickets.models import Ticket, TicketStatus

# A process start counts as a restart in this incident when it is at most this long before the
# ticket opened (a restart follows the failure the ticket is about; the slack covers a restart
# so fast that the monitor's first signal was the restart itself). Wider, and every store of a
# freshly started cluster would look restarted.
RESTART_SLACK_BEFORE_TICKET = 15.0
# PD marks a store Disconnected after 20 s without a heartbeat.
HEARTBEAT_STALE_AFTER = 20.0
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
    restarted: bool = False  # a new process started in the window
    running: bool | None = None  # True: answers now; False: does not; None: nobody can tell
    running_seen: str | None = None  # which source says so, in words ("Prometheus still scrapes it")
    scrape_failed: bool | None = None  # a Prometheus scrape failed in the window; None: no series
    reported_unreachable: float = 0.0  # survivors' unreachable reports about it in the window
    pod_state: PodState | None = None
    reasons: list[str] = Field(default_factory=list)  # why it counts as affected

    @property
    def affected(self) -> bool:
        return bool(self.reasons)

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


def _reports_by_store(metrics: list[MetricSummary]) -> dict[int, float]:
    out: dict[int, float] = {}
    for m in metrics:
        if m.name == "unreachable_reports" and m.labels.get("store_id", "").isdigit() and m.delta:
            out[int(m.labels["store_id"])] = out.get(int(m.labels["store_id"]), 0.0) + m.delta
    return out


def _store_fact(
    data: DiagnosisInput,
    store: StoreInfo | None,
    pod: str,
    *,
    up: MetricSummary | None,
    start: MetricSummary | None,
    reports: float,
    pod_state: PodState | None,
    open_tickets: list[str],
) -> StoreFact:
    since = data.ticket.opened_at - RESTART_SLACK_BEFORE_TICKET
    on_ticket = (store is not None and store.id == data.ticket.store_id) or pod == data.ticket.pod
    fact = StoreFact(store_id=store.id if store else data.ticket.store_id, pod=pod, pod_state=pod_state)
    reasons = fact.reasons
    if store is not None:
        fact.state = store.store.state_name
        if store.store.last_heartbeat:
            fact.heartbeat_age = max(0.0, data.now - store.store.last_heartbeat_seconds)
        if store.store.start_timestamp >= since:
            fact.restarted = True
        if fact.state not in ("Up", "Tombstone"):
            reasons.append(f"PD says {fact.state}")
    if start is not None and start.delta:
        fact.restarted = True
    if pod_state is not None and pod_state.last_finished_at and pod_state.last_finished_at >= since:
        fact.restarted = True
    signals = {o.signal: o for o in data.ticket.observations} if on_ticket else {}
    if "store_restarted" in signals:
        fact.restarted = True
    if fact.restarted:
        reasons.append("its process restarted")
    # Running now: the last scrape, else the ticket's probe, else PD's heartbeat freshness.
    probe_ok = on_ticket and any(
        o.source == "probe" and o.signal != "store_unreachable" for o in data.ticket.observations
    )
    if up is not None and up.after is not None:
        fact.running = up.after >= 1
        fact.running_seen = "Prometheus still scrapes it" if fact.running else "Prometheus cannot scrape it"
        fact.scrape_failed = up.min == 0
        if up.min == 0:
            reasons.append("scrapes failed" + ("" if fact.running else " and still fail"))
    elif probe_ok or (fact.restarted and fact.state == "Up"):
        fact.running = True
        fact.running_seen = None if probe_ok else "PD has it Up with a new start time"
    elif on_ticket and "store_unreachable" in signals and not fact.restarted:
        fact.running = False
        fact.running_seen = "its status port does not answer"
    if probe_ok:
        fact.running = True
        fact.running_seen = "its status port still answers"
        reasons.append("its status port still answers")
    if reports:
        fact.reported_unreachable = reports
        reasons.append(f"peers reported it unreachable {reports:.0f} times")
    if pod_state is not None and (pod_state.waiting_reason or not pod_state.ready):
        reasons.append(f"pod {pod_state.phase} {pod_state.waiting_reason or 'not Ready'}".strip())
    for t in open_tickets:
        reasons.append(f"open ticket {t}")
    if on_ticket:
        ticket_signals = sorted({o.signal for o in data.ticket.observations} & STORE_SIGNALS)
        if ticket_signals:
            reasons.append("ticket: " + ", ".join(ticket_signals))
    # The same reason from two sources reads once.
    fact.reasons = list(dict.fromkeys(reasons))
    return fact


def _event_pod(obj: str) -> str:
    kind, _, name = obj.partition("/")
    return name if kind == "pod" else ""


def _pd_names_from_ticket(facts: ClusterFacts, ticket: Ticket) -> None:
    """PD's members as the ticket's own observations name them, where PD's member list could not
    be read now: an unhealthy member and the leader are never left unnamed."""
    if not facts.pd_members_unhealthy:
        for o in ticket.observations:
            if o.signal == "pd_unhealthy":
                members = o.data.get("members")
                if isinstance(members, list):
                    facts.pd_members_unhealthy = list(
                        dict.fromkeys([*facts.pd_members_unhealthy, *map(str, members)])
                    )
    if facts.pd_leader is None:
        changes = [
            o for o in ticket.observations if o.signal == "pd_leader_changed" and o.data.get("current")
        ]
        if changes:
            facts.pd_leader = str(max(changes, key=lambda o: o.at).data["current"])


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
            pod = s.pod
            store_facts.append(
                _store_fact(
                    data,
                    s,
                    pod,
                    up=up.get(pod),
                    start=starts.get(pod),
                    reports=reports.get(s.id, 0.0),
                    pod_state=pods.get(pod),
                    open_tickets=open_by_store.get(s.id, []),
                )
            )
            facts.other_open_tickets += open_by_store.get(s.id, [])
    elif t.pod:
        store_facts.append(
            _store_fact(
                data,
                None,
                t.pod,
                up=up.get(t.pod),
                start=starts.get(t.pod),
                reports=reports.get(t.store_id or -1, 0.0),
                pod_state=pods.get(t.pod),
                open_tickets=[],
            )
        )
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

    if data.pd is not None:
        facts.pd_answered = True
        facts.pd_members = len(data.pd.members)
        facts.pd_members_unhealthy = [m.name for m in data.pd.members if not m.health]
        facts.pd_leader = data.pd.leader
    elif data.stores is not None:
        facts.pd_answered = True
    _pd_names_from_ticket(facts, t)

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
