"""Ticket store at 100,000 tickets: open-ticket lookup latency and insert throughput with two
writer processes on one file. Target: lookup <= 5 ms."""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from pathlib import Path

from benchmarks.common import summary, write
from controller.tickets import TicketDB
from controller.tickets.models import Observation, Severity

TOTAL = 100_000
CLUSTERS = 20


def _writer(path: str, worker: int, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        async with TicketDB(path) as db:
            started = time.perf_counter()
            for i in range(count):
                ticket, _ = await db.open_or_update(
                    cluster=f"c{i % CLUSTERS}",
                    invariant="store_unreachable",
                    subject=f"w{worker}/store/{i}",
                    severity=Severity.HIGH,
                    signals=["store_unreachable"],
                    observations=[
                        Observation(
                            signal="store_unreachable", source="probe", at=float(i), detail="probe failed"
                        )
                    ],
                    store_id=i % 1000,
                    now=float(i),
                )
                await db.resolve(ticket.id, now=float(i) + 5)
            queue.put(time.perf_counter() - started)

    asyncio.run(main())


async def lookups(path: str) -> dict[str, float]:
    async with TicketDB(path) as db:
        for c in range(CLUSTERS):  # a few open tickets among 100k resolved ones
            await db.open_or_update(
                cluster=f"c{c}",
                invariant="pd_unhealthy",
                subject="pd",
                severity=Severity.HIGH,
                signals=["pd_unhealthy"],
                observations=[],
            )
        times = []
        for i in range(500):
            t0 = time.perf_counter()
            open_ = await db.open_tickets(f"c{i % CLUSTERS}")
            times.append((time.perf_counter() - t0) * 1000)
            assert len(open_) == 1
        store_times = []
        for i in range(500):
            t0 = time.perf_counter()
            await db.find_for_store(f"c{i % CLUSTERS}", i % 1000, since=TOTAL / 2)
            store_times.append((time.perf_counter() - t0) * 1000)
        plan = await (
            await db.conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM tickets WHERE cluster=? AND status!='resolved'", ("c1",)
            )
        ).fetchall()
        return {
            "open_lookup_ms": summary(times),
            "store_lookup_ms": summary(store_times),
            "open_lookup_plan": " | ".join(str(tuple(r)[-1]) for r in plan),
            "count": await db.count(),
        }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "tickets.db")
        asyncio.run(TicketDB(path).open())
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        per_writer = TOTAL // 2
        started = time.perf_counter()
        procs = [ctx.Process(target=_writer, args=(path, w, per_writer, queue)) for w in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        wall = time.perf_counter() - started
        result = asyncio.run(lookups(path))
    write(
        "tickets_store",
        {
            "description": "100,000 tickets written (open + resolve each) by two processes at once, then lookups",
            "tickets": result["count"],
            "insert_wall_seconds": round(wall, 2),
            "inserts_per_second_two_writers": round(TOTAL / wall),
            "open_ticket_lookup_ms": result["open_lookup_ms"],
            "store_lookup_ms": result["store_lookup_ms"],
            "query_plan": result["open_lookup_plan"],
            "target": "open-ticket lookup <= 5 ms",
            "met": result["open_lookup_ms"]["p95"] <= 5,
        },
    )


if __name__ == "__main__":
    main()
