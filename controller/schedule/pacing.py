"""When a schedule needs a look. The timer ticks every second for every schedule, but a look
LISTs the schedule's ChaosDemos; a schedule only needs one when a run is due, when its spec
changed, or when one of its ChaosDemos changed (a run finished: history, Forbid, Replace). A
suspended schedule with nothing running costs nothing."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.schedule.model import ScheduleStatus

# However quiet a schedule is, it is looked at this often: a missed event costs at most this.
LOOK_AT_LEAST_EVERY = 60.0


@dataclass
class SchedulePacing:
    # uid -> (the generation last reconciled, no look needed before this moment)
    _quiet_until: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    # (namespace, schedule name) whose ChaosDemos changed since its last look
    _changed: set[tuple[str, str]] = field(default_factory=set)

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

    def forget(self, uid: str) -> None:
        self._quiet_until.pop(uid, None)
