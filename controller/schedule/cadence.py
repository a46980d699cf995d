"""When a schedule's runs are due: a cron expression in a time zone, a macro, or ``@every``.

Accepted, as in Kubernetes CronJob and Chaos Mesh's Schedule:
- five cron fields (minute hour day-of-month month day-of-week), or six with seconds first;
- ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily`` ``@midnight`` ``@hourly``;
- ``@every <duration>`` (``30s``, ``5m``, ``1h30m``), counted from the schedule's creation.
Cron times are wall-clock times in ``timeZone`` (IANA, default UTC), so ``0 3 * * *`` in
Europe/Berlin runs at 03:00 local across daylight-saving changes.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MIN_EVERY_SECONDS = 5
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class CadenceError(ValueError):
    """The schedule or time zone cannot be used; the message says why, for the status."""


def parse_every(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not text.strip() or not match:
        raise CadenceError(f"@every needs a duration such as 30s, 5m or 1h30m, not {text!r}")
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    if seconds < MIN_EVERY_SECONDS:
        raise CadenceError(f"@every {text.strip()} is shorter than {MIN_EVERY_SECONDS}s")
    return float(seconds)


@dataclass(frozen=True)
class Cadence:
    expression: str
    zone: ZoneInfo
    every: float | None = None  # seconds, for @every
    anchor: float = 0.0  # @every counts from here (the schedule's creation)

    def times_after(self, after: float) -> Iterator[float]:
        """Run times strictly after ``after`` (epoch seconds), in order."""
        if self.every is not None:
            k = max(math.floor((after - self.anchor) / self.every) + 1, 1)
            while True:
                yield self.anchor + k * self.every
                k += 1
        start = datetime.fromtimestamp(math.floor(after), tz=self.zone)
        for moment in CronSim(self.expression, start):
            yield moment.timestamp()

    def next_after(self, after: float) -> float:
        return next(self.times_after(after))

    def due(self, after: float, until: float, limit: int) -> tuple[list[float], int]:
        """Run times in (after, until], oldest first: the newest ``limit`` of them, and how many
        older ones were left out (a controller that was down for long)."""
        times: deque[float] = deque(maxlen=limit)
        seen = 0
        for t in self.times_after(after):
            if t > until:
                break
            times.append(t)
            seen += 1
        return list(times), seen - len(times)


def parse(schedule: str, time_zone: str = "", *, anchor: float = 0.0) -> Cadence:
    """The cadence of a schedule, or CadenceError naming what is wrong."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CadenceError(f"unknown time zone {time_zone!r} (an IANA name such as Europe/Berlin)") from exc
    text = " ".join(schedule.split())
    if text.startswith("@every"):
        return Cadence(text, zone, every=parse_every(text.removeprefix("@every")), anchor=anchor)
    expression = MACROS.get(text.lower(), text)
    if expression.startswith("@"):
        raise CadenceError(f"unknown macro {text!r}; one of {', '.join(MACROS)} or @every <duration>")
    try:
        # Parsing iterates once: an expression that never matches (31 February) fails here.
        next(iter(CronSim(expression, datetime.now(tz=UTC).astimezone(zone))))
    except (CronSimError, StopIteration, ValueError) as exc:
        raise CadenceError(f"invalid cron expression {schedule!r}: {exc}") from exc
    return Cadence(expression, zone)
