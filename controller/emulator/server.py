"""The emulator process: PD's API (HTTP and gRPC on one port), one status server and one gRPC
server per store, the pod watch, a clock tick.

Also a small admin API (not PD's) that tests and the sandbox use to inject faults into the
emulator itself (stop serving PD, slow or drop status answers) and to read its own record of
what happened (stores, elections). Client load comes from real clients: TiKV's own client
(``chaosdemo probe``) or go-ycsb, over the gRPC services.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web
from kubernetes_asyncio import client, config

from controller.emulator.grpc_servers import PortMux, StoreServers, start_pd_grpc
from controller.emulator.grpc_tikv import RawData
from controller.emulator.model import HEARTBEAT_INTERVAL, EmulatedCluster, Store
from controller.emulator.operator_v2 import InstanceOperator
from controller.emulator.pd_api import make_pd_app
from controller.emulator.pod_binding import PodBinding
from controller.emulator.policy_binding import PolicyBinding
from controller.emulator.tikv_status import StatusServers
from controller.emulator.tls import ServerTLS

log = logging.getLogger(__name__)


@dataclass
class EmulatorSettings:
    kubeconfig: str | None
    namespace: str = "tikv"
    headless_service: str = "tikv-peer"
    pd_host: str = "127.0.0.1"
    pd_port: int = 2379
    # PD's service names (e.g. basic-pd.tikv.svc), resolved to pd_host through the hosts file.
    pd_names: tuple[str, ...] = ()
    # Play tidb-operator v2's part: create, recreate and re-apply the instances' pods.
    operator_v2: bool = False
    admin_port: int = 0
    time_scale: float = 1.0
    status_ip_prefix: str = "127.0.10"
    targets_file: Path | None = None  # Prometheus file_sd output for the TiKV job
    regions: int = 24
    hosts_file: Path | None = None  # the stores' advertised names -> their loopback addresses
    # PD's client port over TLS, as PD does with [security] cacert/cert/key: clients must present
    # a certificate signed by the CA (PD's cert-allowed-cn aside). None: plain.
    tls: ServerTLS | None = None


class Emulator:
    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.cluster = EmulatedCluster(
            namespace=settings.namespace,
            headless_service=settings.headless_service,
            time_scale=settings.time_scale,
            status_ip_prefix=settings.status_ip_prefix,
            region_count=settings.regions,
        )
        self.status_servers = StatusServers(self.cluster)
        self.store_servers = StoreServers(
            self.cluster,
            RawData(),
            settings.hosts_file,
            {name: settings.pd_host for name in settings.pd_names},
        )
        scheme = "https" if settings.tls else "http"
        self.pd_url = f"{scheme}://{settings.pd_host}:{settings.pd_port}"
        self._pd_runner: web.AppRunner | None = None
        self._pd_grpc: grpc.aio.Server | None = None
        self._pd_mux: PortMux | None = None

    # -- store lifecycle hooks -------------------------------------------------------------------
    async def _store_up(self, store: Store) -> None:
        await self.status_servers.open(store)
        await self.store_servers.open(store)
        self._write_targets()

    async def _store_down(self, pod: str) -> None:
        await self.status_servers.close(pod)
        await self.store_servers.close(pod)

    def _write_targets(self) -> None:
        """Every store ever seen stays a scrape target, so a dead one reads ``up`` 0."""
        path = self.settings.targets_file
        if path is None:
            return
        groups = [
            {"targets": [s.status_address], "labels": {"pod": s.pod, "namespace": self.cluster.namespace}}
            for s in sorted(self.cluster.stores.values(), key=lambda s: s.id)
        ]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, indent=2))
        tmp.replace(path)  # atomic: Prometheus never reads half a file

    # -- PD serving (admin can stop it, to emulate PD being down) ------------------------------
    async def start_pd(self) -> None:
        """PD's HTTP API and gRPC service, each on a loopback port of its own, behind one port."""
        if self._pd_runner is not None:
            return
        runner = web.AppRunner(make_pd_app(self.cluster, self.pd_url), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._pd_grpc, grpc_port = await start_pd_grpc(self.cluster, self.pd_url)
        self._pd_mux = PortMux(
            self.settings.pd_host,
            self.settings.pd_port,
            grpc_port,
            http_port,
            ssl_context=self.settings.tls.context() if self.settings.tls else None,
        )
        await self._pd_mux.start()
        self._pd_runner = runner

    async def stop_pd(self) -> None:
        if self._pd_mux is not None:
            await self._pd_mux.stop()
            self._pd_mux = None
        if self._pd_grpc is not None:
            await self._pd_grpc.stop(grace=None)
            self._pd_grpc = None
        if self._pd_runner is not None:
            await self._pd_runner.cleanup()
            self._pd_runner = None

    def _admin_app(self) -> web.Application:
        app = web.Application()

        async def pd(request: web.Request) -> web.Response:
            body = await request.json()
            if body.get("serving", True):
                await self.start_pd()
            else:
                await self.stop_pd()
            return web.json_response({"serving": self._pd_runner is not None})

        async def jitter(request: web.Request) -> web.Response:
            body = await request.json()
            self.status_servers.jitter.delay_max_s = float(body.get("delay_max_s", 0.0))
            self.status_servers.jitter.drop_ratio = float(body.get("drop_ratio", 0.0))
            return web.json_response(body)

        async def state(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "pd_serving": self._pd_runner is not None,
                    "elections": [dataclasses.asdict(e) for e in self.cluster.elections],
                    "stores": {
                        s.pod: {"id": s.id, "alive": s.alive, "state": self.cluster.state_name(s)}
                        for s in self.cluster.stores.values()
                    },
                }
            )

        app.router.add_post("/emulator/pd", pd)
        app.router.add_get("/emulator/state", state)
        app.router.add_post("/emulator/jitter", jitter)
        return app

    async def _tick_loop(self) -> None:
        period = max(0.05, min(1.0, self.cluster.scaled(HEARTBEAT_INTERVAL) / 10))
        while True:
            self.cluster.tick()
            await asyncio.sleep(period)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await config.load_kube_config(config_file=self.settings.kubeconfig)
        admin_runner = web.AppRunner(self._admin_app(), access_log=None)
        await admin_runner.setup()
        await web.TCPSite(admin_runner, "127.0.0.1", self.settings.admin_port).start()
        async with client.ApiClient() as api:
            binding = PodBinding(api, self.cluster, self._store_up, self._store_down)
            tasks = [
                asyncio.create_task(binding.run()),
                asyncio.create_task(PolicyBinding(api, self.cluster).run()),
                asyncio.create_task(self._tick_loop()),
            ]
            if self.settings.operator_v2:
                tasks.append(asyncio.create_task(InstanceOperator(api, self.settings.namespace).run()))
            try:
                await binding.synced.wait()
                self._write_targets()
                await self.start_pd()
                log.info("emulator ready: PD at %s, %d stores", self.pd_url, len(self.cluster.stores))
                if ready:
                    ready.set()
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                await self.stop_pd()
                await self.status_servers.close_all()
                await self.store_servers.close_all()
                await admin_runner.cleanup()
