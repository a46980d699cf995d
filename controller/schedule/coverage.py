"""A schedule's alert coverage in its status: each source over its newest recorded drills."""

from __future__ import annotations

from controller.coverage import records
from controller.coverage.summary import summarize
from controller.schedule.model import SourceTally
from controller.tickets import TicketDB

# Enough drills for a median that means something, few enough to read on every reconcile.
DRILLS_TALLIED = 50


async def tally(db: TicketDB, namespace: str, schedule: str) -> list[SourceTally]:
    drills = await records.load(db, namespace=namespace, schedule=schedule, limit=DRILLS_TALLIED)
    return [
        SourceTally(
            fault=fault.fault,
            source=s.source,
            drills=s.drills,
            caught=s.caught,
            medianTTDSeconds=None if s.ttd_median is None else round(s.ttd_median, 3),
            dominantMiss=(s.dominant_miss or "")[:300] or None,
        )
        for fault in summarize(drills).faults
        for s in fault.sources
    ]
