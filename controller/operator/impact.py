"""What the drill cost the application, from Prometheus: request rate, error ratio and p99
latency from TiKV's own gRPC metrics (``tikv_grpc_msg_duration_seconds``,
``tikv_grpc_msg_fail_total``) before the kill, during the drill and after recovery, the worst
moment, the seconds in which requests failed, and each store's leader count
(``tikv_raftstore_region_count{type="leader"}``). ``summarize`` and ``slo_breaches`` are pure;
``measure`` asks Prometheus.

Curves use ``irate`` at the scrape interval, so a failure shows from the scrape after it to the
scrape after it ended: every figure is accurate to one scrape interval (``resolutionSeconds``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from controller.operator.model import Slo
from controller.operator.recovery_moments import seconds_between
from controller.operator.state import (
    ClientImpact,
    Impact,
    ImpactFigures,
    StoreLeaders,
    Timeline,
    WorstMoment,
)
from controller.prom import PrometheusClient, PrometheusError, Series
from controller.timefmt import format_rfc3339

BASELINE_SECONDS = 60.0
IMPACT_POINTS = 120  # at most this many rows of ``series`` in status
DEFAULT_RESOLUTION = 15.0  # when Prometheus does not say the TiKV job's scrape interval


@dataclass(frozen=True)
class Curves:
    """The clients' view, one point per step."""

    times: list[float]
    rate: list[float | None]  # messages per second
    failed: list[float | None]  # failed messages per second
    p99: list[float | None]  # seconds
    step: float

    def ratio(self, i: int) -> float | None:
        rate, failed = self.rate[i], self.failed[i]
        if rate is None or rate <= 0:
            return None
        return min(1.0, (failed or 0.0) / rate)


def _figures(curves: Curves, lo: float, hi: float) -> ImpactFigures | None:
    idx = [i for i, t in enumerate(curves.times) if lo <= t < hi]
    rates = [curves.rate[i] for i in idx if curves.rate[i] is not None]
    if not rates:
        return None
    failed = sum(curves.failed[i] or 0.0 for i in idx if curves.rate[i] is not None)
    total = sum(r for r in rates if r is not None)
    p99s = [curves.p99[i] for i in idx if curves.p99[i] is not None]
    return ImpactFigures(
        requestsPerSecond=round(total / len(rates), 3),
        errorRatio=round(failed / total, 4) if total > 0 else None,
        p99Seconds=round(max(p for p in p99s if p is not None), 4) if p99s else None,
    )


def _downsample(curves: Curves, kill: float) -> list[list[float | None]]:
    every = max(1, math.ceil(len(curves.times) / IMPACT_POINTS))
    rows: list[list[float | None]] = []
    for i in range(0, len(curves.times), every):
        ratio = curves.ratio(i)
        rate, p99 = curves.rate[i], curves.p99[i]
        rows.append(
            [
                round(curves.times[i] - kill, 3),
                None if rate is None else round(rate, 3),
                None if ratio is None else round(ratio, 4),
                None if p99 is None else round(p99, 4),
            ]
        )
    return rows


def summarize(
    curves: Curves,
    *,
    kill: float,
    recovered: float | None,
    until: float,
    leaders: dict[str, list[tuple[float, float]]] | None = None,
) -> Impact:
    drill_end = recovered if recovered is not None else until
    during_idx = [i for i, t in enumerate(curves.times) if kill <= t <= until]
    worst = None
    ranked = [
        (curves.ratio(i) or 0.0, curves.p99[i] or 0.0, i) for i in during_idx if curves.rate[i] is not None
    ]
    if ranked:
        _, _, i = max(ranked, key=lambda r: (r[0], r[1], -r[2]))  # the first of equal worsts
        worst = WorstMoment(at=curves.times[i], errorRatio=curves.ratio(i), p99Seconds=curves.p99[i])
    failing = sum(1 for i in during_idx if (curves.failed[i] or 0.0) > 0)
    return Impact(
        baselineFrom=kill - BASELINE_SECONDS,
        until=until,
        resolutionSeconds=curves.step,
        before=_figures(curves, kill - BASELINE_SECONDS, kill),
        during=_figures(curves, kill, drill_end + curves.step),
        after=_figures(curves, drill_end + curves.step, until + curves.step)
        if recovered is not None
        else None,
        worst=worst,
        unavailableSeconds=round(failing * curves.step, 3),
        leadersByStore={k: _store_leaders(v, kill) for k, v in sorted((leaders or {}).items())} or None,
        series=_downsample(curves, kill),
    )


def _store_leaders(points: list[tuple[float, float]], kill: float) -> StoreLeaders:
    before = [v for t, v in points if t < kill]
    during = [v for t, v in points if t >= kill]
    return StoreLeaders(
        before=before[-1] if before else None,
        min=min(during) if during else None,
        after=points[-1][1] if points else None,
    )


def with_leaderless(impact: Impact, timeline: Timeline, leaders_before: int | None) -> Impact:
    """The victim's regions lost their leader at the kill; they had one again when PD showed
    none of them led by the victim (``leadersElectedAt``)."""
    kill, elected = timeline.injected_at, timeline.leaders_elected_at
    if kill is None or elected is None:
        return impact
    return impact.model_copy(
        update={
            "regions_without_leader": leaders_before or 0,
            "leaderless_seconds": seconds_between(kill, elected),
        }
    )


NO_TRAFFIC = "no client traffic during the drill: impact unknown"


def with_traffic_note(server: Impact | None, client: ClientImpact | None) -> Impact | None:
    """The server's figures (Prometheus) and the client's (the prober) in one status, and a
    plain word when no client sent anything: then no figure here is the fault's cost."""
    impact = server if server is not None else (Impact() if client is not None else None)
    if impact is None:
        return None
    client_traffic = client is not None and client.during is not None and client.during.requests > 0
    server_traffic = impact.during is not None and (impact.during.requests_per_second or 0.0) > 0
    note = None if client_traffic or server_traffic else NO_TRAFFIC
    return impact.model_copy(update={"client": client, "note": note})


def slo_breaches(slo: Slo, impact: Impact | None) -> list[str]:
    """Each SLO figure the drill went past, as a sentence naming it; the SLO cannot pass unmeasured.
    With the client prober's figures, those are judged (what a client met); else the server's."""
    if not slo.set:
        return []
    client = impact.client if impact is not None else None
    if client is not None:
        return _client_slo_breaches(slo, client)
    if impact is None or impact.error or impact.during is None or impact.note:
        why = (impact.error or impact.note) if impact else None
        why = why or "no client requests were measured during the drill"
        return [f"spec.slo cannot be checked: {why}"]
    worst = impact.worst
    at = format_rfc3339(worst.at, digits=0) if worst and worst.at else "?"
    return _judged(
        slo,
        error_ratio=(worst.error_ratio if worst else None, lambda v: f"error ratio {v:.3f} at {at}"),
        p99=impact.during.p99_seconds,
        unavailable=(impact.unavailable_seconds, lambda v: f"{v:.1f}s with failing requests"),
    )


Measured = tuple[float | None, Callable[[float], str]]  # a figure, and how a breach names it


def _judged(
    slo: Slo, *, error_ratio: Measured, p99: float | None, unavailable: Measured, source: str = ""
) -> list[str]:
    """Each figure over its spec.slo limit, as a sentence: what was measured, then the limit."""
    limits = (
        ("maxErrorRatio", slo.max_error_ratio, error_ratio),
        ("maxP99Seconds", slo.max_p99_seconds, (p99, lambda v: f"p99 latency {v:.3f}s")),
        ("maxUnavailableSeconds", slo.max_unavailable_seconds, unavailable),
    )
    return [
        f"{source}{said(value)} exceeds spec.slo.{name} {limit}"
        for name, limit, (value, said) in limits
        if limit is not None and value is not None and value > limit
    ]


def _aligned(series: list[Series], times: list[float]) -> list[float | None]:
    values = {round(t, 3): v for s in series[:1] for t, v in s.points}
    return [None if (v := values.get(round(t, 3))) is None or math.isnan(v) else v for t in times]


async def measure(
    prom: PrometheusClient, job: str, *, kill: float, recovered: float | None, until: float
) -> Impact:
    """Ask Prometheus for the curves around the drill and summarise them. A failure is recorded
    in ``error``, never raised: the drill's verdict says what could not be measured."""
    try:
        step = await prom.scrape_interval(job) or DEFAULT_RESOLUTION
        window = f"{max(3 * step, 2.0):g}s"  # irate needs two samples in it
        start = kill - BASELINE_SECONDS
        sel = f'job="{job}"'
        rate_q = f"sum(irate(tikv_grpc_msg_duration_seconds_count{{{sel}}}[{window}]))"
        fail_q = f"sum(irate(tikv_grpc_msg_fail_total{{{sel}}}[{window}])) or vector(0)"
        p99_q = f"histogram_quantile(0.99, sum by (le) (irate(tikv_grpc_msg_duration_seconds_bucket{{{sel}}}[{window}])))"
        leaders_q = f'sum by (instance) (tikv_raftstore_region_count{{{sel},type="leader"}})'
        rate, failed, p99, leaders = await asyncio.gather(
            *(prom.query_range(q, start, until, step) for q in (rate_q, fail_q, p99_q, leaders_q))
        )
    except PrometheusError as exc:
        return Impact(baselineFrom=kill - BASELINE_SECONDS, until=until, error=str(exc)[:300])
    times = sorted({t for s in rate for t, _ in s.points})
    curves = Curves(times, _aligned(rate, times), _aligned(failed, times), _aligned(p99, times), step)
    by_store = {s.labels.get("instance", "?"): s.points for s in leaders}
    return summarize(curves, kill=kill, recovered=recovered, until=until, leaders=by_store)


def _client_slo_breaches(slo: Slo, client: ClientImpact) -> list[str]:
    during = client.during
    if client.error or during is None or during.requests == 0:
        why = client.error or NO_TRAFFIC
        return [f"spec.slo cannot be checked: the client prober has no figures ({why})"]
    return _judged(
        slo,
        error_ratio=(
            during.error_ratio,
            lambda v: (
                f"{during.failed} failed and {during.stalled} stalled of {during.requests} requests "
                f"(error ratio {v:.3f})"
            ),
        ),
        p99=during.p99_seconds,
        unavailable=(client.unavailable_seconds, lambda v: f"{v:.1f}s in which some region answered nothing"),
        source="TiKV's client: ",
    )
