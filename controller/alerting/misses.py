"""Why a source missed: each expected rule's own expression replayed over the drill window, with
what the standard TiKV/PD rules need before they fire as a layer on top."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.alerting.matching import RuleInfo
from controller.alerting.replay import RuleReplay, explain


@dataclass(frozen=True)
class DrillFacts:
    """What the drill knows that explains a miss."""

    detection_window: float  # seconds the source was watched after the kill
    outage_seconds: float | None  # kill to the store re-registered; None: not back
    max_store_down_seconds: float | None = None
    pending: Mapping[str, float] = field(default_factory=dict)  # alert name -> pending since (s after kill)
    already_active: frozenset[str] = frozenset()  # alert names about the victim active at the kill


def why_missed(
    expected: Iterable[str],
    rules: Mapping[str, RuleInfo],
    facts: DrillFacts,
    replays: Mapping[str, RuleReplay] | None = None,
) -> str:
    """Why the expected alerts did not fire for this drill: each rule's own expression replayed
    over the window (``replays``) when Prometheus could, then what the standard rules need."""
    names = list(expected)
    if not names:
        return (
            f"no alert about {_store_text()} fired within the {facts.detection_window:.0f}s detection window"
            + (f"; loaded rules: {', '.join(sorted(rules))}" if rules else "")
        )
    return "; ".join(_why_one(name, rules.get(name), facts, (replays or {}).get(name)) for name in names)


def _store_text() -> str:
    return "the victim (its instance, pod or store id) or the cluster"


def _why_one(name: str, rule: RuleInfo | None, facts: DrillFacts, replay: RuleReplay | None) -> str:
    if rule is None:
        return f"{name}: no alerting rule of that name is loaded in Prometheus"
    if name in facts.already_active:
        return f"{name}: was already active before the kill (an earlier incident), so it cannot tell this one apart"
    standard = _standard_rule(name, rule, facts)
    if replay is None or replay.error:
        return (None if name in facts.pending else standard) or _generic(name, rule, facts)
    measured = f"{name}: " + explain(replay, replay.start, facts.outage_seconds)
    if replay.spans or standard is None:
        return measured
    # Never true: what the standard rule needs says why (its condition takes longer to arise).
    return f"{measured}; {standard.removeprefix(name + ': ')}"


def _generic(name: str, rule: RuleInfo, facts: DrillFacts) -> str:
    hold = f"for: {rule.for_seconds:.0f}s"
    window = f"the {facts.detection_window:.0f}s detection window"
    if name in facts.pending:
        return f"{name}: pending {facts.pending[name]:.0f}s after the kill, but its {hold} outlasted {window}"
    return f"{name}: did not fire within {window} ({hold})"


def _standard_rule(name: str, rule: RuleInfo, facts: DrillFacts) -> str | None:
    """What one of the standard TiKV/PD rules needs before it fires (None: not one of them)."""
    hold = f"for: {rule.for_seconds:.0f}s"
    window = f"the {facts.detection_window:.0f}s detection window"
    back = (
        f"the store was back after {facts.outage_seconds:.1f}s"
        if facts.outage_seconds is not None
        else "the store was still away"
    )
    query = rule.query
    if "store_disconnected_count" in query:
        if facts.outage_seconds is not None and facts.outage_seconds < 20:
            return (
                f"{name}: needs the store Disconnected in PD (20 s without a heartbeat), then {hold}: an "
                f"outage of at least {20 + rule.for_seconds:.0f}s; {back}"
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
    return None
