"""Are PD's and Prometheus' clocks the controller's? Figures mix moments from all three (PD's
store start times and heartbeats, Prometheus' alert and sample times, the controller's own kill
time); a PD one second behind would make a restarted store look started before the kill, and
so "never back". Preflight reads each clock and refuses beyond a tolerance."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from controller.pd import PDClient
from controller.prom import PrometheusClient, PrometheusError

# PD's clock comes from the HTTP Date header: whole seconds, truncated.
DATE_HEADER_RESOLUTION = 1.0
# Prometheus' time() is its evaluation time, in milliseconds.
PROMETHEUS_RESOLUTION = 0.001


@dataclass(frozen=True)
class ClockReading:
    source: str
    offset: float  # the source's clock minus the controller's, seconds
    uncertainty: float  # half the round trip plus the source's resolution

    def beyond(self, tolerance: float) -> bool:
        """Skewed by more than ``tolerance`` even at the most favourable reading."""
        return abs(self.offset) - self.uncertainty > tolerance


async def read_clock(
    source: str, ask: Callable[[], Awaitable[float]], resolution: float, truncated: bool
) -> ClockReading | None:
    """The source's clock against ours, read at the midpoint of the round trip; None when the
    source gave no time to read."""
    before = time.time()
    theirs = await ask()
    after = time.time()
    if math.isnan(theirs):
        return None
    if truncated:  # the true moment lies in [theirs, theirs + resolution)
        theirs += resolution / 2
    return ClockReading(source, theirs - (before + after) / 2, (after - before) / 2 + resolution / 2)


async def clock_readings(pd: PDClient, prom: PrometheusClient | None) -> list[ClockReading]:
    readings = [await read_clock("PD", pd.server_time, DATE_HEADER_RESOLUTION, truncated=True)]
    if prom is not None:

        async def prometheus_time() -> float:
            [sample] = await prom.query("time()")
            return sample.value

        # Detection copes without Prometheus (probes, PD); so does this check.
        with contextlib.suppress(PrometheusError, ValueError):
            readings.append(
                await read_clock("Prometheus", prometheus_time, PROMETHEUS_RESOLUTION, truncated=False)
            )
    return [r for r in readings if r is not None]


def skew_refusal(readings: list[ClockReading], tolerance: float) -> str | None:
    skewed = [r for r in readings if r.beyond(tolerance)]
    if not skewed:
        return None
    return (
        "; ".join(
            f"{r.source}'s clock is {abs(r.offset):.1f}s {'ahead of' if r.offset > 0 else 'behind'} the "
            f"controller's (±{r.uncertainty:.2f}s)"
            for r in skewed
        )
        + f": beyond the {tolerance:g}s tolerance (CHAOSDEMO_MAX_CLOCK_SKEW_SECONDS); figures mixing their "
        "times would be wrong. Synchronise the clocks (NTP)"
    )
