"""The prober: TiKV's own client (``tikv_client``, Rust inside, PD's and TiKV's gRPC) reading one
key per region, round-robin, a few requests a second, each with a deadline.

Reads by default: a read of a key nobody wrote is answered "not found", which is a success. With
a key prefix (``spec.impact.probe.writes``) it also writes, under that prefix only (see
``writes``). Every
request is recorded as the client saw it: answered, failed (the client's own retries and
back-off gave up: what an application gets) or nothing within the deadline (a stall).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from controller.client_probe.figures import still_unavailable
from controller.client_probe.model import Op, Outcome, ProbeRecord, ProbeTarget
from controller.client_probe.writes import written_value

DEFAULT_RATE = 10.0  # requests a second, over all regions
DEFAULT_DEADLINE = 1.0  # seconds a request may take before it counts as a stall
CONNECT_TIMEOUT = 10.0
WARM_UP_SECONDS = 5.0


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
        warm_up_seconds: float = WARM_UP_SECONDS,
    ) -> None:
        if not targets:
            raise ProberError("no region to probe")
        self.client = client
        self.targets = targets
        self.rate = rate
        self.deadline = deadline
        self.warm_up_seconds = warm_up_seconds
        self.records: list[ProbeRecord] = []
        self._on_record = on_record
        self._inflight: set[asyncio.Task[None]] = set()
        self.recording_since: float | None = None  # when the cadence began, after the warm-up

    def failing_regions(self) -> set[int]:
        """The regions whose latest request failed or stalled: not yet answering."""
        return still_unavailable(self.records)

    async def warm_up(self, stop: asyncio.Event) -> None:
        """Read every region once, unrecorded, for at most ``warm_up_seconds``: connections to
        the stores open and the client's region cache fills, as in a client that has been
        running. Otherwise the first round's connection set-up would count as the baseline's
        latency (a stall on a busy machine). A region that does not answer is not waited for."""
        reads: asyncio.Future[Any] = asyncio.gather(
            *(self.client.get(t.key) for t in self.targets), return_exceptions=True
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {reads, stopped}, timeout=self.warm_up_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        reads.cancel()

    async def run(self, stop: asyncio.Event) -> list[ProbeRecord]:
        """Warm up, then send requests on a fixed cadence until ``stop`` is set, then wait for
        those in flight (each ends by its deadline)."""
        await self.warm_up(stop)
        self.recording_since = time.time()
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
            if target.op == Op.WRITE:
                await asyncio.wait_for(self.client.put(target.key, written_value(started)), self.deadline)
            else:
                await asyncio.wait_for(self.client.get(target.key), self.deadline)
        except TimeoutError:
            outcome = Outcome.TIMEOUT
        except Exception as exc:  # the Rust client raises plain Exceptions with its message
            outcome, error = Outcome.ERROR, str(exc)[:300]
        record = ProbeRecord(
            region_id=target.region_id,
            started=started,
            ended=time.time(),
            outcome=outcome,
            error=error,
            op=target.op,
        )
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)
