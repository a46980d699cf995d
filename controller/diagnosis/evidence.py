"""The numbered evidence a diagnosis rests on (E1..En), built under budgets.

Each source has a character budget and the whole bundle has one too; whatever does not fit is
cut with a visible marker and listed in ``dropped``, so neither the model nor the reader mistakes
a truncated table for a complete one. Roughly four characters make a token.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from controller.diagnosis.fact_sheet import FactLine, fact_sheet
from controller.diagnosis.facts import ClusterFacts, StoreFact, derive
from controller.diagnosis.inputs import DiagnosisInput, KubeEvent, MetricSummary, PDView, PodState
from controller.pd.models import StoreInfo
from controller.redaction import quote_untrusted, redact
from controller.tickets.models import Ticket

# Recorded with every diagnosis; bump it when the evidence or the instructions change.
PROMPT_VERSION = "chaosdemo-diagnosis/5"

DEFAULT_BUDGETS = {
    "ticket": 3500,
    "drill": 800,
    "cluster": 6000,
    "pd": 800,
    "stores": 3500,
    "pods": 1500,
    "metrics": 3500,
    "events": 3000,
    "recent_tickets": 1500,
}
DEFAULT_TOTAL_BUDGET = 28_000  # characters, about 7,000 tokens
# Affected stores listed one by one in the overview; beyond this, a count.
AFFECTED_LISTED = 20


@dataclass
class Evidence:
    id: str
    source: str
    title: str
    body: str
    at: float | None = None

    def render(self) -> str:
        when = f" @ {time.strftime('%H:%M:%S', time.gmtime(self.at))}Z" if self.at else ""
        return f"[{self.id}] {self.title} (source: {self.source}{when})\n{self.body}"


@dataclass
class EvidenceBundle:
    items: list[Evidence] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # logical key -> evidence id
    facts: list[FactLine] = field(default_factory=list)  # [F1].., shown inside the cluster item
    prompt_version: str = PROMPT_VERSION

    def ids(self) -> set[str]:
        """Everything a diagnosis may cite: the evidence items and the facts derived from them."""
        return {e.id for e in self.items} | {f.id for f in self.facts if self._fact_shown(f)}

    def id_for(self, key: str) -> str | None:
        """The id of a source ("stores") or of a derived fact ("store:3:alive")."""
        if key in self.keys:
            return self.keys[key]
        return next((f.id for f in self.facts if f.key == key and self._fact_shown(f)), None)

    def _fact_shown(self, fact: FactLine) -> bool:
        # A fact the budget cut from the cluster item is not there to be cited.
        return any(f"[{fact.id}] " in e.body for e in self.items if e.id == self.keys.get("cluster"))

    def render(self) -> str:
        text = "\n\n".join(e.render() for e in self.items)
        if self.dropped:
            text += "\n\n[not included, over budget: " + "; ".join(self.dropped) + "]"
        return text

    @property
    def chars(self) -> int:
        return len(self.render())


def _cut(text: str, budget: int) -> tuple[str, int]:
    if len(text) <= budget:
        return text, 0
    keep = max(0, budget - 60)
    return text[:keep] + f"\n[... truncated {len(text) - keep} chars]", len(text) - keep


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def _ticket_text(t: Ticket) -> str:
    lines = [
        f"ticket #{t.id}: invariant={t.invariant} subject={t.subject} severity={t.severity.value} "
        f"status={t.status.value}",
        f"store_id={t.store_id} address={t.store_address} pod={t.pod}",
        f"opened_at={time.strftime('%H:%M:%S', time.gmtime(t.opened_at))}Z signals={', '.join(t.signals)}",
        "observations:",
    ]
    for o in t.observations:
        lines.append(f"- {o.signal} via {o.source} at +{o.at - t.opened_at:.1f}s: {o.detail}")
    return "\n".join(lines)


def _stores_text(stores: list[StoreInfo], now: float, focus: int | None) -> str:
    """The ticket's store first, then any store not Up, then the rest: if the budget cuts the
    table of a big cluster, it cuts the healthy stores nobody needs to read about."""
    rows = ["id | address | state | heartbeat age | started | leaders | regions"]
    for s in sorted(stores, key=lambda s: (s.id != focus, s.store.state_name == "Up", s.id)):
        age = now - s.store.last_heartbeat_seconds if s.store.last_heartbeat else float("nan")
        rows.append(
            f"{s.id} | {s.store.address} | {s.store.state_name} | {age:.1f}s | "
            f"{time.strftime('%H:%M:%S', time.gmtime(s.store.start_timestamp))}Z | "
            f"{s.status.leader_count} | {s.status.region_count}"
        )
    return "\n".join(rows)


def _metrics_text(metrics: list[MetricSummary], focus_pod: str | None) -> str:
    rows = ["metric {labels} | before | after | min | max | delta"]
    # The ticket's pod first, then series that changed: the same budget logic as the stores.
    for m in sorted(metrics, key=lambda m: (m.labels.get("pod") != focus_pod, not m.delta)):
        labels = ",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))
        rows.append(
            f"{m.name}{{{labels}}} | {_fmt(m.before)} | {_fmt(m.after)} | {_fmt(m.min)} | "
            f"{_fmt(m.max)} | {_fmt(m.delta)}"
        )
    return "\n".join(rows)


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at)) + "Z"


def _store_line(f: StoreFact) -> str:
    who = f"store {f.store_id} ({f.pod})" if f.store_id is not None else f.pod
    running = {True: "answering now", False: "not answering now", None: "running unknown"}[f.running]
    age = f", last heartbeat {f.heartbeat_age:.0f}s ago" if f.heartbeat_age is not None else ""
    return f"- {who}: PD {f.state}{age}; {running}; " + "; ".join(f.reasons)


def _ids(ids: list[int], shown: int = 15) -> str:
    more = f" ... and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(str(i) for i in ids[:shown]) + more


def _cluster_text(facts: ClusterFacts) -> str:
    """The whole cluster at a glance: every affected store (not only the ticket's), regions
    without a majority, PD, other open tickets, and which sources were missing."""
    known = f"{facts.stores_known} known to PD" if facts.stores_known is not None else "PD could not be asked"
    lines = [f"stores: {known}; {len(facts.affected)} affected"]
    lines += [_store_line(f) for f in facts.affected[:AFFECTED_LISTED]]
    if len(facts.affected) > AFFECTED_LISTED:
        lines.append(f"- ... and {len(facts.affected) - AFFECTED_LISTED} more affected stores")
    if facts.regions_known is not None:
        lines.append(
            f"regions: {facts.regions_known}; without a Raft majority of healthy voters: "
            f"{len(facts.regions_without_majority)}"
            + (f" (ids {_ids(facts.regions_without_majority)})" if facts.regions_without_majority else "")
            + f"; one more voter loss from it: {len(facts.regions_one_loss_away)}"
        )
    elif facts.majority_estimate is not None:
        lines.append(
            f"regions: PD's list not available; from the stores and max-replicas: {facts.majority_estimate}"
        )
    if facts.pd_members:
        unhealthy = ", ".join(facts.pd_members_unhealthy) or "none"
        lines.append(
            f"PD: {facts.pd_members} members, unhealthy: {unhealthy}; leader {facts.pd_leader or 'none'}"
        )
    if facts.other_open_tickets:
        lines.append("other open tickets: " + "; ".join(facts.other_open_tickets[:10]))
    for title, items in (
        ("node failures", facts.node_failures),
        ("resource pressure", facts.resource_pressure),
        ("crash loops", facts.crash_loops),
        ("configuration errors", facts.config_errors),
    ):
        if items:
            lines.append(f"{title}: " + "; ".join(items[:5]))
    if facts.missing:
        lines.append("missing: " + ", ".join(facts.missing))
    return "\n".join(lines)


def _pd_text(pd: PDView) -> str:
    rows = ["member | health | leader"]
    rows += [
        f"{m.name} | {'healthy' if m.health else 'unhealthy'} | {m.name == pd.leader}" for m in pd.members
    ]
    if pd.leader is None:
        rows.append("no leader")
    return "\n".join(rows)


def _facts_text(lines: list[FactLine]) -> str:
    head = "derived facts (each names the evidence it rests on; cite them as [F..] or cite the evidence):"
    return "\n".join([head, *(f.render() for f in lines)])


def _pods_text(pods: list[PodState], focus: set[str]) -> str:
    rows = ["pod | phase | ready | created | restarts | waiting | last termination | node | image"]
    for p in sorted(pods, key=lambda p: (p.name not in focus, p.ready and not p.restarts, p.name)):
        created = _clock(p.created_at) if p.created_at else "-"
        last = (
            f"{p.last_termination_reason} exit {p.last_exit_code} at {_clock(p.last_finished_at)}"
            if p.last_finished_at
            else "-"
        )
        rows.append(
            f"{p.name} | {p.phase} | {p.ready} | {created} | {p.restarts} | {p.waiting_reason or '-'} | "
            f"{last} | {p.node or '-'} | {p.image or '-'}"
        )
    return "\n".join(rows)


def _events_text(events: list[KubeEvent]) -> str:
    lines = [f"{e.type} {e.reason} {e.object} x{e.count}: {e.message}" for e in events]
    return quote_untrusted("\n".join(lines), "kubernetes-events")


def _recent_text(tickets: list[Ticket], current_id: int) -> str:
    lines = [
        f"#{t.id} {t.invariant} on {t.subject} ({t.status.value}) opened {_clock(t.opened_at)}"
        for t in tickets
        if t.id != current_id
    ]
    return "\n".join(lines) or "none"


def build_evidence(
    data: DiagnosisInput,
    *,
    blind: bool = True,
    budgets: dict[str, int] | None = None,
    total_budget: int = DEFAULT_TOTAL_BUDGET,
    facts: ClusterFacts | None = None,
) -> EvidenceBundle:
    """Number the evidence in a fixed order; redact; enforce budgets. Blind (the default) leaves
    out the drill record, so the diagnosis is what a responder would conclude."""
    budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
    facts = facts or derive(data)
    bundle = EvidenceBundle()
    sources: list[tuple[str, str, str, str, float | None]] = [
        (
            "ticket",
            "monitor ticket",
            f"The ticket the monitor opened (#{data.ticket.id})",
            _ticket_text(data.ticket),
            data.ticket.opened_at,
        ),
    ]
    if data.drill is not None and not blind:
        sources.append(
            (
                "drill",
                "chaos drill record",
                "What the chaos drill injected",
                json.dumps(data.drill.model_dump(), sort_keys=True),
                data.drill.injected_at,
            )
        )
    sources.append(
        (
            "cluster",
            "derived from PD, Prometheus, Kubernetes and the ticket store",
            "Cluster overview and the facts derived from the evidence",
            "",  # written below, once every source's id is known
            data.now,
        )
    )
    if data.stores is not None:
        sources.append(
            (
                "stores",
                "PD /pd/api/v1/stores",
                "Stores as PD reports them now",
                _stores_text(data.stores, data.now, data.ticket.store_id),
                data.now,
            )
        )
    if data.pd is not None:
        sources.append(
            ("pd", "PD /pd/api/v1/health and /members", "PD's members", _pd_text(data.pd), data.now)
        )
    if data.pods:
        focus = set(facts.affected_pods) | ({data.ticket.pod} if data.ticket.pod else set())
        sources.append(
            (
                "pods",
                "Kubernetes pods",
                "TiKV pods: phase, restarts, last termination (restart history)",
                _pods_text(data.pods, focus),
                data.now,
            )
        )
    if data.metrics:
        sources.append(
            (
                "metrics",
                "Prometheus",
                "Metrics around the incident (summaries)",
                _metrics_text(data.metrics, data.ticket.pod),
                data.now,
            )
        )
    if data.events:
        sources.append(
            (
                "events",
                "Kubernetes Events",
                "Kubernetes Events of the pod and its namespace",
                _events_text(data.events),
                data.now,
            )
        )
    if data.recent_tickets:
        sources.append(
            (
                "recent_tickets",
                "ticket store",
                "Other recent tickets on this cluster (open and resolved)",
                _recent_text(data.recent_tickets, data.ticket.id),
                None,
            )
        )

    # Ids follow the sources' order and are kept even for a source the budget drops whole, so
    # the facts can name the evidence they rest on before the budgets are applied.
    ids = {key: f"E{n}" for n, (key, *_) in enumerate(sources, start=1)}
    bundle.facts = fact_sheet(facts, ids.get)
    cluster_body = _cluster_text(facts) + "\n\n" + _facts_text(bundle.facts)
    used = 0
    for key, source, title, body, at in sources:
        body, cut = _cut(redact(cluster_body if key == "cluster" else body), budgets.get(key, 2000))
        if cut:
            bundle.dropped.append(f"{key}: {cut} chars truncated")
        remaining = total_budget - used
        if remaining < 200:
            bundle.dropped.append(f"{key}: whole source over the total budget")
            body = "[not included: over the total budget]"
        elif len(body) > remaining:
            body, cut = _cut(body, remaining)
            bundle.dropped.append(f"{key}: {cut} chars over the total budget")
        evidence = Evidence(id=ids[key], source=source, title=title, body=body, at=at)
        bundle.items.append(evidence)
        bundle.keys[key] = evidence.id
        used += len(evidence.render())
    return bundle
