"""Coverage from the recorded drills in a time range, with proposals when Prometheus is at hand."""

from __future__ import annotations

from dataclasses import dataclass

from controller.coverage import proposals, records
from controller.coverage.summary import Coverage, summarize
from controller.prom.client import PrometheusClient
from controller.tickets import TicketDB


@dataclass(frozen=True)
class Query:
    since: float
    until: float
    namespace: str | None = None
    schedule: str | None = None
    # The proposals' replay: evaluation step, the jobs naming TiKV and PD, and the scale of the
    # candidates' `for:` (1 on a real cluster; the sandbox's scale in tests).
    step: float = 15.0
    tikv_job: str = "tikv"
    pd_job: str = "pd"
    time_scale: float = 1.0


async def collect(db: TicketDB, query: Query, prom: PrometheusClient | None = None) -> Coverage:
    drills = await records.load(
        db, since=query.since, until=query.until, namespace=query.namespace, schedule=query.schedule
    )
    coverage = summarize(drills, since=query.since, until=query.until)
    if prom is None:
        return coverage
    return await proposals.propose(
        prom,
        coverage,
        drills,
        step=query.step,
        tikv_job=query.tikv_job,
        pd_job=query.pd_job,
        time_scale=query.time_scale,
    )
