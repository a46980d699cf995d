"""The monitor's liveness and readiness endpoints, for Kubernetes probes.

- ``/healthz``: the loop is alive: a cycle ended (well or not) within ``stale_after`` seconds, or
  the monitor is still starting (waiting for PD to say which cluster it is).
- ``/readyz``: it is doing its job: the cluster is known and the last cycle succeeded recently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Heartbeat:
    """What the loop reports after each cycle; read by the endpoints."""

    started_at: float
    stale_after: float
    cluster: str | None = None
    last_cycle_at: float | None = None
    last_ok_at: float | None = None

    def cycle_done(self, ok: bool) -> None:
        self.last_cycle_at = time.time()
        if ok:
            self.last_ok_at = self.last_cycle_at

    def alive(self, now: float) -> bool:
        last = self.last_cycle_at or self.started_at
        return now - last <= self.stale_after

    def ready(self, now: float) -> bool:
        return (
            self.cluster is not None
            and self.last_ok_at is not None
            and now - self.last_ok_at <= self.stale_after
        )


async def serve(heartbeat: Heartbeat, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        ok = heartbeat.alive(time.time())
        return web.json_response(
            {"alive": ok, "last_cycle_at": heartbeat.last_cycle_at}, status=200 if ok else 503
        )

    async def readyz(_: web.Request) -> web.Response:
        ok = heartbeat.ready(time.time())
        body = {"ready": ok, "cluster": heartbeat.cluster, "last_ok_at": heartbeat.last_ok_at}
        return web.json_response(body, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
