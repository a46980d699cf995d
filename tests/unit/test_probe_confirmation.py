"""A failed status-port probe is not a dead store: it counts only when two more probes, 0.1 s
apart, fail too."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from controller.monitor.snapshot import Snapshotter
from controller.pd import PDClient
from controller.sandbox.processes import free_port


async def test_failed_probes_are_confirmed_and_a_dead_port_fails_three_times() -> None:
    calls = {"n": 0}

    async def status(request: web.Request) -> web.Response:
        calls["n"] += 1  # two failures in a row (a GC pause), then an answer
        return web.Response(status=503 if calls["n"] <= 2 else 200, text="{}")

    app = web.Application()
    app.router.add_get("/status", status)
    async with TestServer(app, host="127.0.0.1") as server:
        snapshotter = Snapshotter(PDClient("http://127.0.0.1:9"), None)
        try:
            flaky = await snapshotter._probe(f"127.0.0.1:{server.port}")
            dead = await snapshotter._probe(f"127.0.0.1:{free_port()}")
        finally:
            await snapshotter.aclose()
            await snapshotter.pd.aclose()
    assert flaky.ok and "after a failed probe: HTTP 503" in flaky.detail and calls["n"] == 3
    assert not dead.ok and "ConnectError" in dead.detail
