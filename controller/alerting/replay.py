"""A rule's own expression evaluated over a drill window: when it was true, for how long, and when
it would have fired.

Prometheus' ``query_range`` evaluates the expression at the rule group's interval, as the rule
manager does; only the series whose labels tie them to the drill count (the same ``judge`` as for
alerts, with the rule's name and static labels added, as its alerts would carry them). This is
what explains a miss for any rule, the user's own included, without knowing what it means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from controller.alerting.matching import Match, RuleInfo
from controller.prom.client import PrometheusClient, PrometheusError

# A rule whose group interval Prometheus does not report is evaluated at its default.
DEFAULT_INTERVAL_SECONDS = 15.0
# Enough evaluations to show a span at any drill length without asking Prometheus for more.
MAX_POINTS = 2_000


@dataclass(frozen=True)
class TrueSpan:
    """Consecutive evaluations at which the expression had a value (was true)."""

    first: float
    last: float

    @property
    def held(self) -> float:
        return self.last - self.first


@dataclass(frozen=True)
class RuleReplay:
    rule: RuleInfo
    start: float  # the kill
    end: float
    step: float
    spans: tuple[TrueSpan, ...] = ()
    error: str | None = None

    @property
    def longest(self) -> TrueSpan | None:
        return max(self.spans, key=lambda s: s.held) if self.spans else None

    def fires_at(self) -> float | None:
        """The first moment its ``for:`` was met within the window (None: never)."""
        for span in self.spans:
            if span.held >= self.rule.for_seconds:
                return span.first + self.rule.for_seconds
        return None

    def would_fire_at(self) -> float | None:
        """Had the first span held on: its first moment plus ``for:`` (None: never true)."""
        return self.spans[0].first + self.rule.for_seconds if self.spans else None


def spans_of(times: Iterable[float], step: float) -> tuple[TrueSpan, ...]:
    """Evaluation times grouped into runs with no missing evaluation between them."""
    spans: list[TrueSpan] = []
    for t in sorted(set(times)):
        if spans and t - spans[-1].last <= step * 1.5:
            spans[-1] = TrueSpan(spans[-1].first, t)
        else:
            spans.append(TrueSpan(t, t))
    return tuple(spans)


async def replay_rule(
    prom: PrometheusClient,
    rule: RuleInfo,
    judge: Callable[[Mapping[str, str]], Match],
    start: float,
    end: float,
) -> RuleReplay:
    """Evaluate ``rule``'s expression from ``start`` to ``end`` at its group's interval."""
    step = max(rule.interval_seconds or DEFAULT_INTERVAL_SECONDS, (end - start) / MAX_POINTS, 0.001)
    try:
        series = await prom.query_range(rule.query, start, end, step)
    except PrometheusError as exc:
        return RuleReplay(rule, start, end, step, error=str(exc))
    times = [
        t
        for s in series
        if judge({**s.labels, **rule.labels, "alertname": rule.name}).counts
        for t, _ in s.points
    ]
    return RuleReplay(rule, start, end, step, spans_of(times, step))


def explain(replay: RuleReplay, kill: float, outage_seconds: float | None) -> str:
    """What the rule's own expression did over the drill window, in one sentence (no rule name)."""
    every = f"evaluated every {_s(replay.step)}"
    if replay.error:
        return f"its expression could not be evaluated over the drill window: {replay.error}"
    hold = f"for: {_s(replay.rule.for_seconds)}"
    lasted = (
        f"this one lasted {outage_seconds:.1f}s" if outage_seconds is not None else "the store was still away"
    )
    longest = replay.longest
    if longest is None:
        return (
            f"its expression was never true for the victim or this cluster from the kill to "
            f"+{replay.end - kill:.0f}s ({every})"
        )
    first = replay.spans[0].first - kill
    fires = replay.fires_at()
    if fires is not None:
        return (
            f"its expression was true from +{first:.1f}s and met its {hold} at +{fires - kill:.1f}s, "
            f"after the detection window or between Prometheus' evaluations ({every})"
        )
    needs = first + replay.rule.for_seconds
    return (
        f"its expression was true from +{first:.1f}s for {longest.held:.1f}s at most ({every}), short of "
        f"its {hold}: it would have fired at +{needs:.0f}s, so it needs an outage of at least "
        f"{needs:.0f}s; {lasted}"
    )


def _s(seconds: float) -> str:
    return f"{seconds:g}s"
