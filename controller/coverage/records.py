"""One finished drill as coverage needs it, kept in the controller's SQLite file.

A ChaosDemo object does not outlive its schedule's history limits, so the run's outcome per
detection source is written when the run ends (``end_run``), keyed by (uid, generation): a
run ended twice after a crash is recorded once. Only runs that injected a fault are kept: a
refused run says nothing about detection.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.operator.state import DrillStatus, RunSnapshot
from controller.tickets import TicketDB

# The label a ChaosDemoSchedule puts on the drills it creates (controller/schedule/model.py).
SCHEDULE_LABEL = "chaos.operator.dev/schedule"


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class VictimRef(_Record):
    pod: str
    namespace: str
    store_id: int | None = None
    store_address: str = ""
    status_address: str = ""


class SourceOutcome(_Record):
    name: str
    type: str
    required: bool = True
    state: str  # Detected, Missed, Error (Watching when the run ended before the window did)
    alert: str | None = None
    ttd_seconds: float | None = None
    why: str | None = None
    alertnames: list[str] = Field(default_factory=list)


class DrillRecord(_Record):
    uid: str
    generation: int
    namespace: str
    name: str
    schedule: str = ""
    fault: str
    verdict: str
    injected_at: float
    # The detection window's end (the kill plus detection.timeoutSeconds): what was watched.
    window_end: float
    store_up_at: float | None = None
    target_namespace: str
    pd_address: str
    victims: list[VictimRef]
    sources: list[SourceOutcome]

    @property
    def outage_seconds(self) -> float | None:
        return None if self.store_up_at is None else self.store_up_at - self.injected_at


def from_run(obj: dict[str, Any], status: DrillStatus, run: RunSnapshot, verdict: str) -> DrillRecord | None:
    """The record of a run that injected its fault (None: nothing was injected)."""
    kill = status.timeline.injected_at
    if kill is None:
        return None
    spec = run.drill_spec()
    meta = obj["metadata"]
    sources = {s.label: s for s in spec.detection.sources}
    return DrillRecord(
        uid=meta["uid"],
        generation=run.generation,
        namespace=meta["namespace"],
        name=meta["name"],
        schedule=(meta.get("labels") or {}).get(SCHEDULE_LABEL, ""),
        fault=spec.fault.action,
        verdict=verdict,
        injected_at=kill,
        window_end=kill + spec.detection.timeout_seconds,
        store_up_at=status.timeline.store_up_at,
        target_namespace=run.target_namespace,
        pd_address=run.pd_address,
        victims=[
            VictimRef(
                pod=v.pod,
                namespace=v.namespace,
                store_id=v.store_id,
                store_address=v.store_address or "",
                status_address=v.status_address or "",
            )
            for v in status.all_victims
        ],
        sources=[
            SourceOutcome(
                name=s.name,
                type=s.type,
                required=s.required,
                state=s.state,
                alert=s.alert,
                ttd_seconds=s.ttd_seconds,
                why=s.why,
                alertnames=list(sources[s.name].alertnames) if s.name in sources else [],
            )
            for s in (status.detection.sources if status.detection else [])
        ],
    )


async def save(db: TicketDB, record: DrillRecord) -> None:
    await db.conn.execute("BEGIN IMMEDIATE")
    try:
        await db.conn.execute(
            "INSERT OR REPLACE INTO drills (uid, generation, namespace, name, schedule, fault, verdict,"
            " injected_at, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.uid,
                record.generation,
                record.namespace,
                record.name,
                record.schedule,
                record.fault,
                record.verdict,
                record.injected_at,
                record.model_dump_json(),
            ),
        )
        await db.conn.execute("COMMIT")
    except BaseException:
        await db.conn.execute("ROLLBACK")
        raise


async def load(
    db: TicketDB,
    *,
    since: float = 0.0,
    until: float = float("inf"),
    namespace: str | None = None,
    schedule: str | None = None,
    limit: int = 1_000,
) -> list[DrillRecord]:
    """The recorded drills injected in [since, until), oldest first (the newest ``limit``)."""
    where = ["injected_at >= ?", "injected_at < ?"]
    params: list[float | str] = [since, min(until, 1e18)]
    if namespace is not None:
        where.append("namespace = ?")
        params.append(namespace)
    if schedule is not None:
        where.append("schedule = ?")
        params.append(schedule)
    sql = f"SELECT record FROM drills WHERE {' AND '.join(where)} ORDER BY injected_at DESC LIMIT ?"
    async with db.conn.execute(sql, (*params, limit)) as cur:
        rows = await cur.fetchall()
    return [DrillRecord.model_validate_json(row[0]) for row in reversed(list(rows))]
