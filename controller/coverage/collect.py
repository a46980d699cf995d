"""Coverage from the recorded drills in a time range, with proposals when Prometheus is at hand."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    replay: proposals.ReplaySettings = field(default_factory=proposals.ReplaySettings)


async def collect(db: TicketDB, query: Query, prom: PrometheusClient | None = None) -> Coverage:
    drills = await records.load(
        db, since=query.since, until=query.until, namespace=query.namespace, schedule=query.schedule
    )
    coverage = summarize(drills, since=query.since, until=query.until)
    if prom is None:
        return coverage
    return await proposals.propose(prom, coverage, drills, query.replay)
