"""One TiKV status server per live store, on the store's own status address.

Prometheus scrapes each store here; when the store's pod dies its server closes, so the
scrape fails and Prometheus sets ``up`` to 0 for that target, exactly as with a real TiKV.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from aiohttp import web

from controller.emulator.model import GRPC_BUCKETS, TIKV_GIT_HASH, TIKV_VERSION, EmulatedCluster, Store

log = logging.getLogger(__name__)
# A request the network drops is held this long at most (Prometheus' scrape timeout is 10 s).
UNANSWERED_SECONDS = 30.0


def tikv_metrics(cluster: EmulatedCluster, store: Store) -> str:
    cluster.tick()
    lines = [
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {store.start_timestamp:.3f}",
        "# HELP tikv_raftstore_region_count Number of regions collected in region_collector",
        "# TYPE tikv_raftstore_region_count gauge",
        f'tikv_raftstore_region_count{{type="region"}} {cluster.region_count_of(store)}',
        f'tikv_raftstore_region_count{{type="leader"}} {cluster.leader_count(store)}',
        "# HELP tikv_store_size_bytes Size of storage.",
        "# TYPE tikv_store_size_bytes gauge",
        f'tikv_store_size_bytes{{type="capacity"}} {store.capacity}',
        f'tikv_store_size_bytes{{type="available"}} {store.capacity - store.used}',
        f'tikv_store_size_bytes{{type="used"}} {store.used}',
        "# HELP tikv_server_report_failure_msg_total Total number of reporting failure messages",
        "# TYPE tikv_server_report_failure_msg_total counter",
    ]
    # The counter keeps a series per peer store it has ever failed to reach.
    for sid, count in sorted(store.unreachable_by_peer.items()):
        lines.append(
            f'tikv_server_report_failure_msg_total{{store_id="{sid}",type="unreachable"}} {int(count)}'
        )
    lines += [
        "# HELP tikv_grpc_msg_duration_seconds Bucketed histogram of grpc server messages",
        "# TYPE tikv_grpc_msg_duration_seconds histogram",
    ]
    for le, count in zip(GRPC_BUCKETS, store.grpc_buckets, strict=True):
        lines.append(f'tikv_grpc_msg_duration_seconds_bucket{{type="raw_get",le="{le}"}} {count}')
    lines += [
        f'tikv_grpc_msg_duration_seconds_bucket{{type="raw_get",le="+Inf"}} {store.grpc_requests}',
        f'tikv_grpc_msg_duration_seconds_sum{{type="raw_get"}} {store.grpc_seconds_sum:.6f}',
        f'tikv_grpc_msg_duration_seconds_count{{type="raw_get"}} {store.grpc_requests}',
        # Real TiKV counts a failure only when sending a response fails: a region error
        # (NotLeader, EpochNotMatch) is a successful response. Nothing here fails to send.
        "# HELP tikv_grpc_msg_fail_total Total number of gRPC messages that failed",
        "# TYPE tikv_grpc_msg_fail_total counter",
        f'tikv_grpc_msg_fail_total{{type="raw_get"}} {store.grpc_failures}',
    ]
    return "\n".join(lines) + "\n"


@dataclass
class ProbeJitter:
    """Trouble on the status ports of healthy stores, for soak tests: each answer is delayed by up
    to ``delay_max_s``, and a ``drop_ratio`` share of them fail (503), as a GC pause or a slow
    node would make them."""

    delay_max_s: float = 0.0
    drop_ratio: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    async def apply(self) -> bool:
        """Wait out the delay; False if this answer is dropped."""
        if self.delay_max_s > 0:
            await asyncio.sleep(self.rng.uniform(0, self.delay_max_s))
        return self.rng.random() >= self.drop_ratio


class StatusServers:
    """Opens a status server for each live store and closes it the moment the store dies."""

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.cluster = cluster
        self.jitter = ProbeJitter()
        self._runners: dict[str, web.AppRunner] = {}

    def _app(self, pod: str) -> web.Application:
        app = web.Application()

        async def metrics(request: web.Request) -> web.Response:
            if not await self._through_the_network(request, pod):
                return web.Response(status=504)  # never sent: the connection is closed
            store = self.cluster.stores[pod]
            return web.Response(text=tikv_metrics(self.cluster, store), content_type="text/plain")

        async def status(request: web.Request) -> web.Response:
            if not await self._through_the_network(request, pod):
                return web.Response(status=504)  # never sent: the connection is closed
            if not await self.jitter.apply():
                return web.Response(status=503, text="dropped by the emulator's probe jitter")
            store = self.cluster.stores[pod]
            return web.json_response(
                {"version": TIKV_VERSION, "git_hash": TIKV_GIT_HASH, "start_time": int(store.start_timestamp)}
            )

        app.router.add_get("/metrics", metrics)
        app.router.add_get("/status", status)
        return app

    async def _through_the_network(self, request: web.Request, pod: str) -> bool:
        """A scrape or probe the network drops gets no answer: held until the cut heals, or
        given up (False: the connection is closed unanswered) after longer than any scraper
        waits."""
        deadline = asyncio.get_running_loop().time() + UNANSWERED_SECONDS
        while not self.cluster.network.status_reachable(pod):
            if asyncio.get_running_loop().time() > deadline:
                if request.transport is not None:
                    request.transport.close()
                return False
            await asyncio.sleep(0.05)
        return True

    async def open(self, store: Store) -> None:
        if store.pod in self._runners:
            return
        host, port = store.status_address.rsplit(":", 1)
        runner = web.AppRunner(self._app(store.pod), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, int(port), reuse_address=True)
        await site.start()
        self._runners[store.pod] = runner

    async def close(self, pod: str) -> None:
        runner = self._runners.pop(pod, None)
        if runner is not None:
            await runner.cleanup()

    async def close_all(self) -> None:
        for pod in list(self._runners):
            await self.close(pod)
