"""When a schedule needs a look. A look LISTs the schedule's ChaosDemos; a schedule only needs
one when a run is due, when its spec changed, or when one of its ChaosDemos changed (a run
finished: history, Forbid, Replace). Each schedule's daemon sleeps until then: woken by an event
about the schedule or one of its runs, or by the clock at its next run (a minute at most). A
suspended schedule with nothing running costs nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import kopf

from controller.schedule.model import ScheduleStatus

# However quiet a schedule is, it is looked at this often: a missed event costs at most this.
LOOK_AT_LEAST_EVERY = 60.0


@dataclass
class SchedulePacing:
    # uid -> (the generation last reconciled, no look needed before this moment)
    _quiet_until: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    # (namespace, schedule name) whose ChaosDemos changed since its last look
    _changed: set[tuple[str, str]] = field(default_factory=set)
    # (namespace, schedule name) -> set when something about it changed: its daemon wakes
    _wakers: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    def due(self, uid: str, generation: int | None, namespace: str, name: str, now: float) -> bool:
        if (namespace, name) in self._changed:
            return True
        seen = self._quiet_until.get(uid)
        return seen is None or seen[0] != generation or now >= seen[1]

    def looked(
        self, uid: str, generation: int | None, namespace: str, name: str, status: ScheduleStatus, now: float
    ) -> None:
        self._changed.discard((namespace, name))
        next_run = status.next_schedule_time
        until = min(now + LOOK_AT_LEAST_EVERY, next_run if next_run is not None else float("inf"))
        self._quiet_until[uid] = (generation, until)

    def child_changed(self, namespace: str, schedule_name: str) -> None:
        self._changed.add((namespace, schedule_name))
        self.wake(namespace, schedule_name)

    def wake(self, namespace: str, schedule_name: str) -> None:
        """Something about the schedule changed (its spec, or one of its runs): look again."""
        self._waker(namespace, schedule_name).set()

    async def sleep(
        self, uid: str, namespace: str, name: str, stopped: kopf.DaemonStopped, now: float
    ) -> None:
        """Until the schedule needs a look, a change wakes it, or its daemon is stopped."""
        waker = self._waker(namespace, name)
        seen = self._quiet_until.get(uid)
        delay = 0.0 if seen is None else max(0.0, seen[1] - now)
        if waker.is_set() or delay == 0.0:
            waker.clear()
            return
        woken = asyncio.ensure_future(waker.wait())
        timer = asyncio.ensure_future(stopped.wait(delay))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()
        waker.clear()

    def _waker(self, namespace: str, name: str) -> asyncio.Event:
        return self._wakers.setdefault((namespace, name), asyncio.Event())

    def forget(self, uid: str, namespace: str, name: str) -> None:
        self._quiet_until.pop(uid, None)
        self._wakers.pop((namespace, name), None)
        self._changed.discard((namespace, name))
