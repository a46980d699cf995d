"""What the prober's records say, as figures: pure functions, unit-tested alone.

A region is unavailable from the start of a request that failed or stalled (after one that was
answered) to when the next request that was answered got its answer, so each edge is known to within the
gap between two reads of that region: ``regions / rate`` seconds when the prober keeps its cadence,
more when its process is starved. The figure reported is the longest gap measured, not the
nominal one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise

from controller.client_probe.model import Outcome, ProbeRecord
from controller.operator.state import ClientFigures, ClientImpact, RegionUnavailable

REGIONS_LISTED = 20  # the regions longest unavailable, in status


def _by_region(records: Iterable[ProbeRecord]) -> dict[int, list[ProbeRecord]]:
    """Each region's records in the order they were sent."""
    by_region: dict[int, list[ProbeRecord]] = defaultdict(list)
    for record in records:
        by_region[record.region_id].append(record)
    for rs in by_region.values():
        rs.sort(key=lambda r: r.started)
    return by_region


def unavailable_spans(records: Iterable[ProbeRecord]) -> dict[int, list[tuple[float, float]]]:
    """Per region, the spans in which it answered nothing: [a failing request's start, the end of
    the next answered request] (a read sent during the outage may be answered after it, once the
    client's retries find the new leader: the region answered then, not when it was sent); a
    span still open at the end closes at the last request's end."""
    spans: dict[int, list[tuple[float, float]]] = {}
    for region, rs in _by_region(records).items():
        out: list[tuple[float, float]] = []
        opened: float | None = None
        for r in rs:
            if r.outcome != Outcome.OK and opened is None:
                opened = r.started
            elif r.outcome == Outcome.OK and opened is not None:
                out.append((opened, max(opened, r.ended)))
                opened = None
        if opened is not None:
            out.append((opened, max(r.ended for r in rs)))
        if out:
            spans[region] = out
    return spans


def still_unavailable(records: Iterable[ProbeRecord]) -> set[int]:
    """The regions whose last request (by start) failed or stalled: their outage outlasted the
    prober, so their unavailable seconds are a lower bound."""
    latest: dict[int, ProbeRecord] = {}
    for record in records:
        seen = latest.get(record.region_id)
        if seen is None or record.started > seen.started:
            latest[record.region_id] = record
    return {region for region, record in latest.items() if record.outcome != Outcome.OK}


def longest_gap(records: Iterable[ProbeRecord], lo: float, hi: float) -> float | None:
    """The longest time between two consecutive reads of one region, over reads started in
    [lo, hi] and the one either side: how far any edge in that window can be off."""
    gaps = []
    for rs in _by_region(records).values():
        gaps += [b.started - a.started for a, b in pairwise(rs) if b.started >= lo and a.started <= hi]
    return max(gaps) if gaps else None


def _union_seconds(spans: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in spans if min(b, hi) > max(a, lo))
    total, end = 0.0, lo
    for a, b in clipped:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def window_figures(records: Sequence[ProbeRecord], lo: float, hi: float) -> ClientFigures | None:
    """Requests started in [lo, hi): how many, how many failed or stalled, latency quantiles
    (a stall counts with the time it took to give up on it)."""
    inside = [r for r in records if lo <= r.started < hi]
    if not inside:
        return None
    failed = sum(1 for r in inside if r.outcome == Outcome.ERROR)
    stalled = sum(1 for r in inside if r.outcome == Outcome.TIMEOUT)
    seconds = [r.seconds for r in inside]
    return ClientFigures(
        requests=len(inside),
        failed=failed,
        stalled=stalled,
        errorRatio=round((failed + stalled) / len(inside), 4),
        p50Seconds=round(_quantile(seconds, 0.5) or 0.0, 4),
        p99Seconds=round(_quantile(seconds, 0.99) or 0.0, 4),
    )


Windows = tuple[ClientFigures | None, ClientFigures | None, ClientFigures | None]


def windows(records: Sequence[ProbeRecord], *, kill: float, recovered: float | None, until: float) -> Windows:
    """Before the kill, during the drill ([kill, recovered], until the run's end if never
    recovered) and after it."""
    end = recovered if recovered is not None else until
    return (
        window_figures(records, float("-inf"), kill),
        window_figures(records, kill, end),
        window_figures(records, end, float("inf")) if recovered is not None else None,
    )


def client_impact(
    records: Sequence[ProbeRecord],
    *,
    kill: float,
    recovered: float | None,
    until: float,
    regions: int,
    rate: float,
    deadline: float,
) -> ClientImpact:
    """The drill window is [kill, recovered] (until the run's end if never recovered)."""
    end = recovered if recovered is not None else until
    gap = longest_gap(records, kill, end)
    spans = unavailable_spans(records)
    per_region = sorted(
        (
            RegionUnavailable(
                regionId=region,
                unavailableSeconds=round(_union_seconds(s, kill, until), 3),
                failed=sum(
                    1
                    for r in records
                    if r.region_id == region and r.outcome == Outcome.ERROR and r.started >= kill
                ),
                stalled=sum(
                    1
                    for r in records
                    if r.region_id == region and r.outcome == Outcome.TIMEOUT and r.started >= kill
                ),
            )
            for region, s in spans.items()
        ),
        key=lambda u: -u.unavailable_seconds,
    )
    per_region = [u for u in per_region if u.unavailable_seconds > 0]
    before, during, after = windows(records, kill=kill, recovered=recovered, until=until)
    return ClientImpact(
        source="tikv-client",
        regions=regions,
        requestsPerSecond=rate,
        deadlineSeconds=deadline,
        probeIntervalSeconds=round(gap if gap is not None else regions / rate, 3),
        before=before,
        during=during,
        after=after,
        unavailableSeconds=round(_union_seconds((x for s in spans.values() for x in s), kill, until), 3),
        regionsUnavailable=len(per_region),
        regionsStillUnavailable=len(still_unavailable(records)),
        unavailableRegions=per_region[:REGIONS_LISTED],
    )
