"""Small readings of a run's victims, shared by its phases."""

from __future__ import annotations

from controller.operator.errors import PermanentError
from controller.operator.state import (
    Victim,
)
from controller.operator.status import StatusWriter


def describe_victim(victim: Victim) -> str:
    return f"PD leader {victim.pd_member}" if victim.pd_member else f"store {victim.store_id}"


def leaders_before(victims: list[Victim]) -> int | None:
    counts = [v.leaders_before for v in victims]
    return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


def victim_of(w: StatusWriter) -> Victim:
    if w.status.victim is None:
        raise PermanentError("VictimLost", "status.victim", "the run's victim record is missing")
    return w.status.victim
