"""The prober: TiKV's own client (``tikv_client``, Rust inside, PD's and TiKV's gRPC) reading one
key per region, round-robin, a few requests a second, each with a deadline.

Reads only: a read of a key nobody wrote is answered "not found", which is a success. Every
request is recorded as the client saw it: answered, failed (the client's own retries and
back-off gave up: what an application gets) or nothing within the deadline (a stall).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from controller.client_probe.model import Outcome, ProbeRecord, ProbeTarget

DEFAULT_RATE = 10.0  # requests a second, over all regions
DEFAULT_DEADLINE = 1.0  # seconds a request may take before it counts as a stall
CONNECT_TIMEOUT = 10.0


class ProberError(RuntimeError):
    """The client could not be started (no PD at the address, the library missing)."""


async def connect(pd_addresses: list[str]) -> Any:
    try:
        from tikv_client.asynchronous import RawClient
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ProberError(f"TiKV's Python client is not installed: {exc}") from exc
    try:
        return await asyncio.wait_for(RawClient.connect(pd_addresses), CONNECT_TIMEOUT)
    except TimeoutError as exc:
        raise ProberError(
            f"no TiKV client connection through PD at {', '.join(pd_addresses)} in 10 s"
        ) from exc
    except Exception as exc:  # the Rust client's own errors have no Python class of their own
        raise ProberError(
            f"TiKV client could not connect through PD at {', '.join(pd_addresses)}: {exc}"
        ) from exc


class Prober:
    def __init__(
        self,
        client: Any,
        targets: list[ProbeTarget],
        *,
        rate: float = DEFAULT_RATE,
        deadline: float = DEFAULT_DEADLINE,
        on_record: Callable[[ProbeRecord], None] | None = None,
    ) -> None:
        if not targets:
            raise ProberError("no region to probe")
        self.client = client
        self.targets = targets
        self.rate = rate
        self.deadline = deadline
        self.records: list[ProbeRecord] = []
        self._on_record = on_record
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> list[ProbeRecord]:
        """Send requests on a fixed cadence until ``stop`` is set, then wait for those in flight
        (each ends by its deadline)."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate
        next_at = loop.time()
        i = 0
        while not stop.is_set():
            target = self.targets[i % len(self.targets)]
            i += 1
            task = asyncio.create_task(self._one(target))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            next_at += period
            # A slow loop does not make a burst: the cadence restarts from now.
            next_at = max(next_at, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        return self.records

    async def _one(self, target: ProbeTarget) -> None:
        started = time.time()
        outcome, error = Outcome.OK, None
        try:
            await asyncio.wait_for(self.client.get(target.key), self.deadline)
        except TimeoutError:
            outcome = Outcome.TIMEOUT
        except Exception as exc:  # the Rust client raises plain Exceptions with its message
            outcome, error = Outcome.ERROR, str(exc)[:300]
        record = ProbeRecord(
            region_id=target.region_id, started=started, ended=time.time(), outcome=outcome, error=error
        )
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)
