"""Which alerts count for a drill, when they went pending and fired, and why a rule missed.

Pure functions over alert labels and the servers' own timestamps; ``watch.py`` fetches them.

An alert counts for a drill when it is about the victim (its labels name the victim's status
address, pod or store id) or, for a cluster-level alert that names no store at all (PD's rules
are summed by PD instance), by its name within the drill's window; an alert about another store
never counts. An alert already active at the kill never counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.prom.client import Series

# Labels that say "this alert is about one store".
STORE_LABELS = ("pod", "store", "store_id")


@dataclass(frozen=True)
class VictimIdentity:
    pod: str
    namespace: str
    store_id: int | None  # None: the victim is a PD member, not a store
    store_address: str  # PD's advertised address, host:20160 ("" for a PD member)
    status_address: str = ""  # the status port Prometheus scrapes, host:20180


@dataclass(frozen=True)
class AlertTiming:
    name: str
    labels: dict[str, str]
    pending_at: float | None = None
    firing_at: float | None = None


@dataclass(frozen=True)
class RuleInfo:
    name: str
    query: str
    for_seconds: float
    interval_seconds: float | None = None


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def names_a_store(labels: Mapping[str, str]) -> bool:
    return labels.get("job") == "tikv" or any(k in labels for k in STORE_LABELS)


def ties_to_victim(labels: Mapping[str, str], victim: VictimIdentity) -> bool:
    instance = labels.get("instance", "")
    if instance and instance in {victim.status_address, victim.store_address} - {""}:
        return True
    if instance and _host(instance).split(".")[0] == victim.pod:
        return True  # tikv-1.tikv-peer.tikv.svc:20180
    if labels.get("pod") == victim.pod and labels.get("namespace", victim.namespace) == victim.namespace:
        return True
    if victim.store_id is None:
        return False
    return str(victim.store_id) in (labels.get("store", ""), labels.get("store_id", ""))


def counts(
    labels: Mapping[str, str],
    victim: VictimIdentity,
    alertnames: Iterable[str] = (),
    matchers: Mapping[str, str] | None = None,
) -> bool:
    """Does an alert with these labels count as noticing this drill's fault?"""
    names = set(alertnames)
    if names and labels.get("alertname") not in names:
        return False
    if any(labels.get(k) != v for k, v in (matchers or {}).items()):
        return False
    return ties_to_victim(labels, victim) if names_a_store(labels) else True


def timings_from_alerts_series(series: Iterable[Series], kill: float) -> list[AlertTiming]:
    """Prometheus' ``ALERTS`` samples, grouped per alert (labels without ``alertstate``): the first
    pending and the first firing sample after the kill. An alert with a sample at or before the
    kill was already active and is left out (see ``active_at_kill``)."""
    grouped: dict[tuple[tuple[str, str], ...], dict[str, list[float]]] = {}
    for s in series:
        labels = {k: v for k, v in s.labels.items() if k not in ("alertstate", "__name__")}
        key = tuple(sorted(labels.items()))
        grouped.setdefault(key, {}).setdefault(s.labels.get("alertstate", ""), []).extend(
            t for t, _ in s.points
        )
    out = []
    for key, states in grouped.items():
        every = [t for times in states.values() for t in times]
        if not every or min(every) <= kill:
            continue
        labels = dict(key)
        out.append(
            AlertTiming(
                name=labels.get("alertname", ""),
                labels=labels,
                pending_at=min(states["pending"]) if states.get("pending") else None,
                firing_at=min(states["firing"]) if states.get("firing") else None,
            )
        )
    return out


def active_at_kill(series: Iterable[Series], kill: float) -> list[dict[str, str]]:
    """The alerts (labels without ``alertstate``) that already had a sample at or before the kill:
    they cannot tell this fault apart, whatever they do after it."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for s in series:
        if any(t <= kill for t, _ in s.points):
            labels = {k: v for k, v in s.labels.items() if k not in ("alertstate", "__name__")}
            seen[tuple(sorted(labels.items()))] = labels
    return list(seen.values())


def first_firing(timings: Iterable[AlertTiming]) -> AlertTiming | None:
    fired = [t for t in timings if t.firing_at is not None]
    return min(fired, key=lambda t: t.firing_at or 0.0) if fired else None


def parse_go_duration(text: str | float | int | None) -> float:
    """Prometheus' rule ``duration`` is seconds in the API; ``for:`` in files is '1m'."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, int | float):
        return float(text)
    total, units = 0.0, {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for number, unit in re.findall(r"([0-9.]+)(ms|s|m|h|d)", text):
        total += float(number) * units[unit]
    return total


@dataclass(frozen=True)
class DrillFacts:
    """What the drill knows that explains a miss."""

    detection_window: float  # seconds the source was watched after the kill
    outage_seconds: float | None  # kill to the store re-registered; None: not back
    max_store_down_seconds: float | None = None
    pending: Mapping[str, float] = field(default_factory=dict)  # alert name -> pending since (s after kill)
    already_active: frozenset[str] = frozenset()  # alert names about the victim active at the kill


def why_missed(expected: Iterable[str], rules: Mapping[str, RuleInfo], facts: DrillFacts) -> str:
    """Why the expected alerts did not fire for this drill, from the rules and the drill."""
    names = list(expected)
    if not names:
        return (
            f"no alert about {_store_text()} fired within the {facts.detection_window:.0f}s detection window"
            + (f"; loaded rules: {', '.join(sorted(rules))}" if rules else "")
        )
    return "; ".join(_why_one(name, rules.get(name), facts) for name in names)


def _store_text() -> str:
    return "the victim (its instance, pod or store id) or the cluster"


def _why_one(name: str, rule: RuleInfo | None, facts: DrillFacts) -> str:
    if rule is None:
        return f"{name}: no alerting rule of that name is loaded in Prometheus"
    hold = f"for: {rule.for_seconds:.0f}s"
    window = f"the {facts.detection_window:.0f}s detection window"
    back = (
        f"the store was back after {facts.outage_seconds:.1f}s"
        if facts.outage_seconds is not None
        else "the store was still away"
    )
    if name in facts.already_active:
        return f"{name}: was already active before the kill (an earlier incident), so it cannot tell this one apart"
    if name in facts.pending:
        return f"{name}: pending {facts.pending[name]:.0f}s after the kill, but its {hold} outlasted {window}"
    query = rule.query
    if "store_disconnected_count" in query:
        if facts.outage_seconds is not None and facts.outage_seconds < 20:
            return (
                f"{name}: needs the store Disconnected in PD (20 s without a heartbeat), then {hold}; {back}"
            )
        return f"{name}: needs the store Disconnected (20 s) plus {hold} = {20 + rule.for_seconds:.0f}s; {window} ended first"
    if "store_down_count" in query:
        down = facts.max_store_down_seconds
        needs = (
            f"PD's max-store-down-time ({down:.0f}s)" if down else "PD's max-store-down-time (30m by default)"
        )
        return f"{name}: needs the store Down, after {needs}, then {hold}; {back}"
    if "down-peer-region-count" in query:
        return f"{name}: needs a region peer down past max-peer-down-duration (10m), then {hold}; {back}"
    if "report_failure_msg" in query:
        return (
            f"{name}: needs more than 10 unreachable reports a second averaged over 10m, then {hold}; "
            f"a {facts.outage_seconds or 0:.0f}s outage does not come close"
        )
    if "process_start_time_seconds" in query:
        if facts.detection_window < rule.for_seconds:
            return f"{name}: fires {hold} after the restart is scraped; {window} is shorter"
        return f"{name}: the restart was not seen by two scrapes (a scrape interval longer than the outage?), or {hold} ran past {window}"
    return f"{name}: did not fire within {window} ({hold})"
