"""One failed status-port probe is not a dead store: it is confirmed by a second before it counts."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from controller.monitor.snapshot import Snapshotter
from controller.pd import PDClient
from controller.sandbox.processes import free_port


async def test_one_failed_probe_is_retried_and_a_dead_port_fails_twice() -> None:
    calls = {"n": 0}

    async def status(request: web.Request) -> web.Response:
        calls["n"] += 1
        return web.Response(status=503 if calls["n"] == 1 else 200, text="{}")

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
    assert flaky.ok and "after one failed probe: HTTP 503" in flaky.detail and calls["n"] == 2
    assert not dead.ok
