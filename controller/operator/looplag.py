"""Event-loop lag: how late a 100 ms sleep wakes up. A blocking call on the loop shows here."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Histogram

LAG = Histogram(
    "chaosdemo_event_loop_lag_seconds",
    "How late the controller's event loop woke from a 100 ms sleep",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
)


_latest = 0.0


def latest() -> float:
    """The most recent lag measured, in seconds."""
    return _latest


async def measure_forever(period: float = 0.1) -> None:
    global _latest
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        _latest = max(0.0, time.perf_counter() - started - period)
        LAG.observe(_latest)
