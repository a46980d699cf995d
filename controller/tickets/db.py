"""Tickets in SQLite via aiosqlite: WAL, a busy timeout, numbered migrations.

Two processes share the file. What keeps them honest is in the schema, not in memory: a
partial unique index allows one unresolved ticket per (cluster, subject) — so also one per
(invariant, subject) — and every write is one short ``BEGIN IMMEDIATE`` transaction. Signals
about the same subject (a store) join its open ticket: one incident, one ticket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from controller.redaction import redact
from controller.severity import SEVERITY_RANK, Severity
from controller.tickets.models import Observation, Ticket

# Each migration runs once, in order; the applied count is PRAGMA user_version.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE tickets (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        cluster        TEXT NOT NULL,
        invariant      TEXT NOT NULL,
        subject        TEXT NOT NULL,
        store_id       INTEGER,
        store_address  TEXT,
        pod            TEXT,
        severity       TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
        status         TEXT NOT NULL CHECK (status IN ('open', 'diagnosed', 'resolved')),
        opened_at      REAL NOT NULL,
        last_seen_at   REAL NOT NULL,
        resolved_at    REAL,
        signals        TEXT NOT NULL DEFAULT '[]',
        observations   TEXT NOT NULL DEFAULT '[]'
    );
    CREATE UNIQUE INDEX tickets_one_unresolved
        ON tickets (cluster, subject) WHERE status != 'resolved';
    CREATE INDEX tickets_by_status ON tickets (cluster, status);
    CREATE INDEX tickets_by_opened ON tickets (opened_at);
    """,
    """
    ALTER TABLE tickets ADD COLUMN diagnosis TEXT;
    ALTER TABLE tickets ADD COLUMN diagnosis_markdown TEXT;
    ALTER TABLE tickets ADD COLUMN diagnoser TEXT;
    ALTER TABLE tickets ADD COLUMN model TEXT;
    ALTER TABLE tickets ADD COLUMN prompt_version TEXT;
    ALTER TABLE tickets ADD COLUMN diagnosis_meta TEXT;
    ALTER TABLE tickets ADD COLUMN diagnosed_at REAL;
    CREATE INDEX tickets_by_store ON tickets (cluster, store_id, opened_at);
    """,
    # The open-ticket lookup (every monitor cycle, every preflight) must not scan a cluster's
    # whole history: a partial index holds only unresolved tickets (benchmarks/tickets_store).
    """
    CREATE INDEX tickets_unresolved ON tickets (cluster, id) WHERE status != 'resolved';
    """,
    # Finished drills, for alert coverage across drills (controller/coverage/records.py).
    """
    CREATE TABLE drills (
        uid          TEXT NOT NULL,
        generation   INTEGER NOT NULL,
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        schedule     TEXT NOT NULL DEFAULT '',
        fault        TEXT NOT NULL,
        verdict      TEXT NOT NULL,
        injected_at  REAL NOT NULL,
        record       TEXT NOT NULL,
        PRIMARY KEY (uid, generation)
    );
    CREATE INDEX drills_by_time ON drills (injected_at);
    CREATE INDEX drills_by_schedule ON drills (namespace, schedule, injected_at);
    """,
)
MAX_OBSERVATIONS = 50  # per ticket: the first ones explain the incident; later ones add little


class TicketDB:
    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None

    async def __aenter__(self) -> TicketDB:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> TicketDB:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer takes the write
        # lock up front and waits (busy timeout) instead of failing on upgrade.
        self._conn = await aiosqlite.connect(
            self.path, isolation_level=None, timeout=self.busy_timeout_ms / 1000
        )
        self._conn.row_factory = aiosqlite.Row
        await self._conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        await self._conn.execute("PRAGMA journal_mode = WAL")
        await self._conn.execute("PRAGMA synchronous = NORMAL")
        await self._migrate()
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("TicketDB is not open")
        return self._conn

    async def _migrate(self) -> None:
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            async with self.conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            applied = int(row[0]) if row else 0
            for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
                for statement in filter(str.strip, script.split(";")):
                    await self.conn.execute(statement)
                await self.conn.execute(f"PRAGMA user_version = {number}")
            await self.conn.execute("COMMIT")
        except BaseException:
            await self.conn.execute("ROLLBACK")
            raise

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- writes ------------------------------------------------------------------------------
    async def open_or_update(
        self,
        *,
        cluster: str,
        invariant: str,
        subject: str,
        severity: Severity,
        signals: Sequence[str],
        observations: Sequence[Observation],
        store_id: int | None = None,
        store_address: str | None = None,
        pod: str | None = None,
        now: float | None = None,
    ) -> tuple[Ticket, bool]:
        """Open a ticket, or add these signals to the subject's unresolved one.

        ``invariant`` names what opened the ticket and stays as it was. Returns the ticket and
        whether it was created. Severity only ever rises.
        """
        now = time.time() if now is None else now
        # Evidence comes from the cluster and may quote a secret (an annotation, a header):
        # redact before it is ever written, so no reader of the ticket file can find one.
        obs_json = [json.loads(redact(json.dumps(o.model_dump()))) for o in observations]
        # BEGIN IMMEDIATE takes the write lock first, so between this SELECT and the write no
        # other process can open the same ticket; the partial unique index backs that up.
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            row = await self._fetch_one(
                "SELECT * FROM tickets WHERE cluster=? AND subject=? AND status!='resolved'",
                (cluster, subject),
            )
            created = row is None
            if row is None:
                cur = await self.conn.execute(
                    """INSERT INTO tickets (cluster, invariant, subject, store_id, store_address, pod, severity,
                                            status, opened_at, last_seen_at, signals, observations)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)""",
                    (
                        cluster,
                        invariant,
                        subject,
                        store_id,
                        store_address,
                        pod,
                        severity.value,
                        now,
                        now,
                        json.dumps(sorted(set(signals))),
                        json.dumps(obs_json[:MAX_OBSERVATIONS]),
                    ),
                )
                ticket_id = int(cur.lastrowid or 0)
            else:
                old = self._row_to_ticket(row)
                merged_signals = sorted(set(old.signals) | set(signals))
                new_signals = set(signals) - set(old.signals)
                # Keep an observation only when it brings a signal the ticket has not seen yet:
                # the same evidence every cycle would bury the first, most telling one.
                extra = [o for o in obs_json if o["signal"] in new_signals]
                merged_obs = ([o.model_dump() for o in old.observations] + extra)[:MAX_OBSERVATIONS]
                rank = max(SEVERITY_RANK[old.severity], SEVERITY_RANK[severity])
                new_severity = next(s for s, r in SEVERITY_RANK.items() if r == rank)
                await self.conn.execute(
                    "UPDATE tickets SET last_seen_at=?, signals=?, observations=?, severity=? WHERE id=?",
                    (now, json.dumps(merged_signals), json.dumps(merged_obs), new_severity.value, old.id),
                )
                ticket_id = old.id
            await self.conn.execute("COMMIT")
        except BaseException:
            await self.conn.execute("ROLLBACK")
            raise
        ticket = await self.get(ticket_id)
        assert ticket is not None
        return ticket, created

    async def resolve(self, ticket_id: int, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        cur = await self.conn.execute(
            "UPDATE tickets SET status='resolved', resolved_at=? WHERE id=? AND status!='resolved'",
            (now, ticket_id),
        )
        return cur.rowcount == 1

    async def save_diagnosis(
        self,
        ticket_id: int,
        *,
        diagnosis: dict[str, Any],
        markdown: str,
        diagnoser: str,
        model: str | None,
        prompt_version: str,
        meta: dict[str, Any],
        now: float | None = None,
    ) -> None:
        """Store a diagnosis. An open ticket becomes 'diagnosed'; a resolved one stays resolved."""
        now = time.time() if now is None else now
        await self.conn.execute(
            """UPDATE tickets SET diagnosis=?, diagnosis_markdown=?, diagnoser=?, model=?, prompt_version=?,
                      diagnosis_meta=?, diagnosed_at=?,
                      status=CASE WHEN status='open' THEN 'diagnosed' ELSE status END
               WHERE id=?""",
            (
                json.dumps(diagnosis),
                markdown,
                diagnoser,
                model,
                prompt_version,
                json.dumps(meta),
                now,
                ticket_id,
            ),
        )

    # -- reads -------------------------------------------------------------------------------
    async def _fetch_one(self, sql: str, params: Sequence[Any]) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetch_all(self, sql: str, params: Sequence[Any]) -> list[Ticket]:
        async with self.conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [self._row_to_ticket(r) for r in rows]

    async def get(self, ticket_id: int) -> Ticket | None:
        row = await self._fetch_one("SELECT * FROM tickets WHERE id=?", (ticket_id,))
        return self._row_to_ticket(row) if row else None

    async def open_tickets(self, cluster: str | None = None) -> list[Ticket]:
        if cluster is None:
            return await self._fetch_all("SELECT * FROM tickets WHERE status!='resolved' ORDER BY id", ())
        return await self._fetch_all(
            "SELECT * FROM tickets WHERE cluster=? AND status!='resolved' ORDER BY id", (cluster,)
        )

    async def find_for_store(self, cluster: str, store_id: int, since: float) -> list[Ticket]:
        """Tickets about one store opened at or after ``since`` (the drill's kill time)."""
        return await self._fetch_all(
            "SELECT * FROM tickets WHERE cluster=? AND store_id=? AND opened_at>=? ORDER BY opened_at, id",
            (cluster, store_id, since),
        )

    async def find_for_subject(self, cluster: str, subject: str, since: float) -> list[Ticket]:
        """Tickets about one subject (``pd``, ``regions``) opened at or after ``since``."""
        return await self._fetch_all(
            "SELECT * FROM tickets WHERE cluster=? AND subject=? AND opened_at>=? ORDER BY opened_at, id",
            (cluster, subject, since),
        )

    async def recent(self, limit: int = 20, cluster: str | None = None) -> list[Ticket]:
        if cluster is None:
            return await self._fetch_all("SELECT * FROM tickets ORDER BY id DESC LIMIT ?", (limit,))
        return await self._fetch_all(
            "SELECT * FROM tickets WHERE cluster=? ORDER BY id DESC LIMIT ?", (cluster, limit)
        )

    async def count(self) -> int:
        row = await self._fetch_one("SELECT COUNT(*) FROM tickets", ())
        return int(row[0]) if row else 0

    @staticmethod
    def _row_to_ticket(row: aiosqlite.Row) -> Ticket:
        data = dict(row)
        for key in ("signals", "observations"):
            data[key] = json.loads(data[key] or "[]")
        for key in ("diagnosis", "diagnosis_meta"):
            data[key] = json.loads(data[key]) if data.get(key) else None
        return Ticket.model_validate(data)
