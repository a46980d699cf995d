"""Prometheus series around an incident, reduced to before/after/min/max/delta per series."""

from __future__ import annotations

import asyncio

from controller.diagnosis.inputs import MetricSummary
from controller.prom import PrometheusClient, PrometheusError, Series

INCIDENT_QUERIES = {
    "up": 'up{{job="{job}"}}',
    "leaders": 'tikv_raftstore_region_count{{job="{job}",type="leader"}}',
    "process_start": 'process_start_time_seconds{{job="{job}"}}',
    # Which store the survivors report unreachable (the label is the store reported, not the
    # reporter): the difference between a store that died and one cut off while it runs.
    "unreachable_reports": 'sum by (store_id) (tikv_server_report_failure_msg_total{{job="{job}",type="unreachable"}})',
}
KEEP_LABELS = ("instance", "pod", "type", "store_id")


def summarize(name: str, series: Series) -> MetricSummary:
    values = series.values()
    labels = {k: v for k, v in series.labels.items() if k in KEEP_LABELS}
    if not values:
        return MetricSummary(name=name, labels=labels)
    return MetricSummary(
        name=name,
        labels=labels,
        before=values[0],
        after=values[-1],
        min=min(values),
        max=max(values),
        delta=values[-1] - values[0],
        points=len(values),
    )


async def incident_metrics(
    prom: PrometheusClient, start: float, end: float, *, job: str = "tikv", max_points: int = 120
) -> list[MetricSummary] | None:
    """Summaries for the window; a failing query is skipped (the diagnosis says what it had).
    None when Prometheus answered none of them: missing, not "no series"."""
    step = max(1.0, (end - start) / max_points)

    async def one(name: str, query: str) -> list[MetricSummary] | None:
        try:
            result = await prom.query_range(query.format(job=job), start, end, step)
        except PrometheusError:
            return None
        return [summarize(name, s) for s in result]

    groups = await asyncio.gather(*(one(n, q) for n, q in INCIDENT_QUERIES.items()))
    if all(g is None for g in groups):
        return None
    return [m for group in groups if group for m in group]
