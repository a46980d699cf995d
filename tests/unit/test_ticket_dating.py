"""A ticket is dated when the monitor decided, like an alert at its firing evaluation: after the
slow answers and the confirmations that made up its evidence, never at the start of the look."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from controller.monitor.loop import Monitor
from controller.monitor.snapshot import Snapshotter
from controller.pd import PDClient
from controller.tickets import TicketDB

SLOW = 0.3  # seconds PD takes to fail


async def test_a_ticket_is_dated_after_the_evidence_that_opened_it(tmp_path: Path) -> None:
    async def failing_slowly(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(SLOW)
        return httpx.Response(503, text="[PD:server:ErrServerNotStarted]")

    pd = PDClient("http://pd", client=httpx.AsyncClient(transport=httpx.MockTransport(failing_slowly)))
    snapshotter = Snapshotter(pd, None, probe=False)
    async with TicketDB(tmp_path / "t.db") as db:
        monitor = Monitor(snapshotter, db, cluster="c", interval=1)
        looked_at = time.time()
        result = await monitor.cycle()
        decided_by = time.time()
        [ticket_id] = result.opened
        ticket = await db.get(ticket_id)
    await snapshotter.aclose()
    assert ticket is not None and ticket.invariant == "pd_unhealthy"
    assert result.snapshot.taken_at < looked_at + SLOW <= ticket.opened_at <= decided_by, (
        result.snapshot.taken_at,
        ticket.opened_at,
    )
