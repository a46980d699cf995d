"""The ticket store on a real SQLite file."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from controller.tickets import Observation, TicketDB, TicketStatus
from controller.tickets.db import MIGRATIONS
from controller.tickets.models import Severity


def obs(signal: str, at: float = 1.0) -> Observation:
    return Observation(signal=signal, source="probe", at=at, detail=f"{signal} fired")


async def test_schema_wal_and_migrations(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with TicketDB(path) as db:
        assert await db.schema_version() == len(MIGRATIONS)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"tickets_one_unresolved", "tickets_by_status", "tickets_by_store"} <= indexes
    raw.close()
    async with TicketDB(path) as db:  # re-opening does not re-run migrations
        assert await db.schema_version() == len(MIGRATIONS)


async def test_one_unresolved_ticket_per_subject(tmp_path: Path) -> None:
    async with TicketDB(tmp_path / "t.db") as db:
        kw = dict(
            cluster="c", subject="store/2", store_id=2, store_address="tikv-1.x.tikv.svc:20160", pod="tikv-1"
        )
        t1, created = await db.open_or_update(
            invariant="store_unreachable",
            severity=Severity.HIGH,
            signals=["store_unreachable"],
            observations=[obs("store_unreachable")],
            now=10.0,
            **kw,
        )  # type: ignore[arg-type]
        assert created and t1.status == TicketStatus.OPEN
        t2, created = await db.open_or_update(
            invariant="store_restarted",
            severity=Severity.MEDIUM,
            signals=["store_restarted"],
            observations=[obs("store_restarted", 11)],
            now=11.0,
            **kw,
        )  # type: ignore[arg-type]
        assert not created and t2.id == t1.id
        assert t2.invariant == "store_unreachable"  # named after what opened it
        assert t2.signals == ["store_restarted", "store_unreachable"]
        assert [o.signal for o in t2.observations] == ["store_unreachable", "store_restarted"]
        assert t2.severity == Severity.HIGH  # never lowered
        t3, _ = await db.open_or_update(
            invariant="store_down",
            severity=Severity.CRITICAL,
            signals=["store_down"],
            observations=[obs("store_down")],
            now=12.0,
            **kw,
        )  # type: ignore[arg-type]
        assert t3.severity == Severity.CRITICAL
        assert await db.count() == 1

        assert await db.resolve(t1.id, now=20.0)
        assert not await db.resolve(t1.id, now=21.0)  # idempotent
        t4, created = await db.open_or_update(
            invariant="store_unreachable",
            severity=Severity.HIGH,
            signals=["store_unreachable"],
            observations=[],
            now=30.0,
            **kw,
        )  # type: ignore[arg-type]
        assert created and t4.id != t1.id
        assert [t.id for t in await db.find_for_store("c", 2, since=25.0)] == [t4.id]
        assert [t.id for t in await db.open_tickets("c")] == [t4.id]


async def test_diagnosis_is_stored(tmp_path: Path) -> None:
    async with TicketDB(tmp_path / "t.db") as db:
        t, _ = await db.open_or_update(
            cluster="c",
            invariant="pd_unhealthy",
            subject="pd",
            severity=Severity.CRITICAL,
            signals=["pd_unhealthy"],
            observations=[obs("pd_unhealthy")],
        )
        await db.save_diagnosis(
            t.id,
            diagnosis={"summary": "PD down"},
            markdown="# PD down",
            diagnoser="offline",
            model=None,
            prompt_version="v1",
            meta={"latency_ms": 1.0},
        )
        got = await db.get(t.id)
        assert got is not None and got.status == TicketStatus.DIAGNOSED
        assert got.diagnosis == {"summary": "PD down"} and got.diagnosis_meta == {"latency_ms": 1.0}


def _writer(path: str, worker: int, count: int) -> None:
    async def main() -> None:
        async with TicketDB(path) as db:
            for i in range(count):
                # Distinct subjects: every write must land. Shared subject: must merge, never duplicate.
                await db.open_or_update(
                    cluster="c",
                    invariant="store_unreachable",
                    subject=f"w{worker}/{i}",
                    severity=Severity.HIGH,
                    signals=["store_unreachable"],
                    observations=[],
                )
                await db.open_or_update(
                    cluster="c",
                    invariant="store_unreachable",
                    subject="shared",
                    severity=Severity.HIGH,
                    signals=[f"s{worker}"],
                    observations=[],
                )

    asyncio.run(main())


async def test_two_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    async with TicketDB(path):
        pass  # migrate once before the race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    async with TicketDB(path) as db:
        assert await db.count() == 2 * 200 + 1
        shared = [t for t in await db.open_tickets("c") if t.subject == "shared"]
        assert len(shared) == 1 and set(shared[0].signals) == {"s0", "s1"}


async def test_not_open_is_an_error() -> None:
    db = TicketDB(":memory:")
    with pytest.raises(RuntimeError, match="not open"):
        await db.get(1)
