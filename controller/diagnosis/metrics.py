"""Prometheus series around an incident, reduced to before/after/min/max/delta per series."""

from __future__ import annotations

import asyncio

from controller.diagnosis.evidence import MetricSummary
from controller.prom import PrometheusClient, PrometheusError, Series

INCIDENT_QUERIES = {
    "up": 'up{{job="{job}"}}',
    "leaders": 'tikv_raftstore_region_count{{job="{job}",type="leader"}}',
    "process_start": 'process_start_time_seconds{{job="{job}"}}',
    "unreachable_reports": 'sum by (instance, pod) (tikv_server_report_failure_msg_total{{job="{job}",type="unreachable"}})',
}
KEEP_LABELS = ("instance", "pod", "type")


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
) -> list[MetricSummary]:
    """Summaries for the window; a failing query is skipped (the diagnosis says what it had)."""
    step = max(1.0, (end - start) / max_points)

    async def one(name: str, query: str) -> list[MetricSummary]:
        try:
            result = await prom.query_range(query.format(job=job), start, end, step)
        except PrometheusError:
            return []
        return [summarize(name, s) for s in result]

    groups = await asyncio.gather(*(one(n, q) for n, q in INCIDENT_QUERIES.items()))
    return [m for group in groups for m in group]
