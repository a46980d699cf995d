"""The monitor's loop: snapshot -> invariants -> tickets, every ``interval`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

from controller.monitor.health import Heartbeat
from controller.monitor.invariants import INVARIANTS, Memory, Signal, evaluate
from controller.monitor.snapshot import Snapshot, Snapshotter
from controller.severity import SEVERITY_RANK
from controller.tickets import Ticket, TicketDB

log = logging.getLogger(__name__)

CYCLES = Counter("chaosdemo_monitor_cycles_total", "Monitor cycles run", ["outcome"])
CYCLE_SECONDS = Histogram(
    "chaosdemo_monitor_cycle_seconds",
    "Wall time of one monitor cycle",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SOURCE_ERRORS = Counter(
    "chaosdemo_monitor_source_errors_total", "Cycles in which a source failed", ["source"]
)
# ``cluster`` is PD's cluster id (pd-<id>), as on the tickets.
TICKETS_OPENED = Counter("chaosdemo_monitor_tickets_opened_total", "Tickets opened", ["invariant", "cluster"])
TICKETS_RESOLVED = Counter("chaosdemo_monitor_tickets_resolved_total", "Tickets resolved", ["cluster"])


def sources_seeing(snap: Snapshot, ticket: Ticket) -> set[str]:
    """The sources that could see the ticket's subject this cycle."""
    if ticket.subject == "pd":
        return {"pd"} if snap.pd_error is None else set()
    if ticket.store_id is None:  # cluster-wide, from PD's region checks
        return {"pd"} if snap.stores_fresh else set()
    return snap.sources_seeing_store(ticket.store_id)


@dataclass
class CycleResult:
    snapshot: Snapshot
    signals: list[Signal]
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    seconds: float = 0.0


class Monitor:
    def __init__(
        self,
        snapshotter: Snapshotter,
        db: TicketDB,
        *,
        cluster: str,
        interval: float = 2.0,
        resolve_after_cycles: int = 3,
    ) -> None:
        if interval <= 0:
            raise ValueError("monitor interval must be > 0")
        self.snapshotter = snapshotter
        self.db = db
        self.cluster = cluster
        self.interval = interval
        self.resolve_after_cycles = resolve_after_cycles
        self.memory = Memory()
        self._clear_cycles: dict[int, int] = defaultdict(int)

    @staticmethod
    def _observable(snap: Snapshot, ticket: Ticket) -> bool:
        """Can this cycle vouch that the ticket's subject is healthy? Only if every source that
        raised the ticket can see it again: a quiet source that cannot see is not a clear bill
        (PD answering says nothing about a store only the probe saw fail)."""
        raised = {o.source for o in ticket.observations} or {"pd"}
        return raised <= sources_seeing(snap, ticket)

    async def cycle(self) -> CycleResult:
        started = time.perf_counter()
        snap = await self.snapshotter.take()
        if snap.pd_error:
            SOURCE_ERRORS.labels("pd").inc()
        if snap.prom_error:
            SOURCE_ERRORS.labels("prometheus").inc()
        signals = evaluate(snap, self.memory)
        result = CycleResult(snapshot=snap, signals=signals)

        by_subject: dict[str, list[Signal]] = defaultdict(list)
        for signal in signals:
            by_subject[signal.subject].append(signal)
        for subject, group in by_subject.items():
            # The ticket is named after the earliest-firing invariant; the rest join it as signals.
            group.sort(key=lambda s: INVARIANTS.index(s.invariant))
            lead = min(group, key=lambda s: _FIRING_ORDER.index(s.invariant))
            worst = max(group, key=lambda s: SEVERITY_RANK[s.severity]).severity
            ticket, created = await self.db.open_or_update(
                cluster=self.cluster,
                invariant=lead.invariant,
                subject=subject,
                severity=worst,
                signals=[s.invariant for s in group],
                observations=[s.observation for s in group],
                store_id=lead.store_id,
                store_address=lead.store_address,
                pod=lead.pod,
                # The ticket is dated when the monitor decided (after the probe's confirmations
                # and the evaluation), like an alert at its firing evaluation; the snapshot's
                # start would date it before the evidence that opened it was in.
                now=time.time(),
            )
            self._clear_cycles[ticket.id] = 0
            if created:
                TICKETS_OPENED.labels(lead.invariant, self.cluster).inc()
                result.opened.append(ticket.id)
                log.warning(
                    "ticket %d opened: %s on %s (%s)",
                    ticket.id,
                    lead.invariant,
                    subject,
                    lead.observation.detail,
                )
            else:
                result.updated.append(ticket.id)

        for ticket in await self.db.open_tickets(self.cluster):
            if ticket.subject in by_subject or not self._observable(snap, ticket):
                continue
            self._clear_cycles[ticket.id] += 1
            if self._clear_cycles[ticket.id] >= self.resolve_after_cycles and await self.db.resolve(
                ticket.id, now=snap.taken_at
            ):
                TICKETS_RESOLVED.labels(self.cluster).inc()
                result.resolved.append(ticket.id)
                self._clear_cycles.pop(ticket.id, None)
                log.info(
                    "ticket %d resolved: %s clear for %d cycles",
                    ticket.id,
                    ticket.subject,
                    self.resolve_after_cycles,
                )
        result.seconds = time.perf_counter() - started
        CYCLE_SECONDS.observe(result.seconds)
        return result

    async def run(self, stop: asyncio.Event | None = None, heartbeat: Heartbeat | None = None) -> None:
        stop = stop or asyncio.Event()
        log.info("monitor running: cluster=%s interval=%.1fs", self.cluster, self.interval)
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.cycle()
                CYCLES.labels("ok").inc()
                if heartbeat:
                    heartbeat.cycle_done(ok=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad cycle (a locked database, a surprise answer) must not end the monitor
                CYCLES.labels("error").inc()
                log.exception("monitor cycle failed; continuing")
                if heartbeat:
                    heartbeat.cycle_done(ok=False)
            delay = max(0.0, self.interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


_FIRING_ORDER = (
    "store_unreachable",
    "store_restarted",
    "store_disconnected",
    "store_down",
    "region_unhealthy",
    "pd_unhealthy",
    "pd_leader_changed",
)
