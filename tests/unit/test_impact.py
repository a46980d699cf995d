"""Client impact as pure functions: windows before, during and after; the worst moment; seconds
with failing requests; SLO breaches named by figure."""

from __future__ import annotations

from controller.operator.impact import Curves, slo_breaches, summarize, with_leaderless
from controller.operator.model import Slo
from controller.operator.state import Impact, Timeline

KILL = 1_800_000_000.0


def _curves() -> Curves:
    """One point a second from 30 s before the kill to 30 s after: 100 requests/s; requests fail
    from +1 to +12 s (the election), half of them at worst; latency rises with the failures."""
    times = [KILL + dt for dt in range(-30, 31)]
    failed = [50.0 if 1 <= t - KILL <= 12 else 0.0 for t in times]
    failed[times.index(KILL + 5)] = 60.0
    p99 = [0.25 if f else 0.002 for f in failed]
    return Curves(times, [100.0] * len(times), failed, p99, step=1.0)


def test_windows_worst_moment_and_unavailable_seconds() -> None:
    impact = summarize(
        _curves(),
        kill=KILL,
        recovered=KILL + 4,
        until=KILL + 30,
        leaders={"a": [(KILL - 1, 8), (KILL + 2, 0), (KILL + 30, 8)]},
    )
    assert (
        impact.before is not None
        and impact.before.error_ratio == 0
        and impact.before.requests_per_second == 100
    )
    assert (
        impact.during is not None
        and impact.during.error_ratio is not None
        and impact.during.error_ratio > 0.3
    )
    assert impact.during.p99_seconds == 0.25
    assert impact.after is not None and 0 < (impact.after.error_ratio or 0) < impact.during.error_ratio
    assert impact.worst is not None and impact.worst.at == KILL + 5 and impact.worst.error_ratio == 0.6
    assert impact.unavailable_seconds == 12.0
    assert impact.leaders_by_store is not None and impact.leaders_by_store["a"].model_dump() == {
        "before": 8,
        "min": 0,
        "after": 8,
    }
    assert impact.series is not None and impact.series[0][0] == -30 and len(impact.series) == 61


def test_leaderless_from_the_timeline() -> None:
    timeline = Timeline(injectedAt=KILL, leadersElectedAt=KILL + 14.25)
    impact = with_leaderless(Impact(), timeline, 8)
    assert impact.regions_without_leader == 8 and impact.leaderless_seconds == 14.25


def test_slo_breaches_name_each_figure_and_an_unmeasured_slo_fails() -> None:
    impact = summarize(_curves(), kill=KILL, recovered=KILL + 4, until=KILL + 30)
    assert slo_breaches(Slo(), impact) == []
    assert slo_breaches(Slo(maxErrorRatio=0.9, maxP99Seconds=1, maxUnavailableSeconds=20), impact) == []
    breaches = slo_breaches(Slo(maxErrorRatio=0.1, maxP99Seconds=0.1, maxUnavailableSeconds=5), impact)
    assert len(breaches) == 3
    assert "error ratio 0.600" in breaches[0] and "spec.slo.maxErrorRatio 0.1" in breaches[0]
    assert "spec.slo.maxP99Seconds" in breaches[1] and "12.0s with failing requests" in breaches[2]
    unmeasured = slo_breaches(Slo(maxErrorRatio=0.1), Impact(error="Prometheus at x is unreachable"))
    assert unmeasured == ["spec.slo cannot be checked: Prometheus at x is unreachable"]
    assert slo_breaches(Slo(maxErrorRatio=0.1), None)[0].startswith("spec.slo cannot be checked")
