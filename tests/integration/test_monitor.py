"""The monitor against the control plane, the emulator, a real Prometheus and a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from controller.monitor.loop import Monitor
from controller.monitor.snapshot import Snapshotter
from controller.pd import PDClient
from controller.prom import PrometheusClient
from controller.sandbox.processes import free_port, wait_until
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB, TicketStatus
from tests.support.drills import patience

pytestmark = pytest.mark.integration


class RunningMonitor:
    def __init__(
        self, cluster: TikvCluster, db_path: Path, *, prometheus: bool = True, interval: float = 0.3
    ):
        self.cluster = cluster
        self.pd = PDClient(cluster.pd_url)
        self.prom = PrometheusClient(cluster.prometheus.url) if prometheus and cluster.prometheus else None
        self.snapshotter = Snapshotter(self.pd, self.prom)
        self.db = TicketDB(db_path)
        self.stop = asyncio.Event()
        self.interval = interval

    async def __aenter__(self) -> RunningMonitor:
        await self.db.open()
        self.monitor = Monitor(self.snapshotter, self.db, cluster=self.cluster.pd_url, interval=self.interval)
        await self.monitor.cycle()  # baseline (start times) before anything is broken
        self.task = asyncio.create_task(self.monitor.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.snapshotter.aclose()
        await self.pd.aclose()
        if self.prom:
            await self.prom.aclose()
        await self.db.close()

    async def wait_for(self, predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
        timeout = patience(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.task.done():
                value = await predicate()
                if value:
                    return value
            else:
                raise AssertionError(f"monitor stopped: {self.task.exception()!r}")
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill(cluster: TikvCluster, pod: str) -> float:
    at = time.time()
    cluster.control_plane.kubectl(
        "delete", "pod", pod, "-n", cluster.namespace, "--grace-period=0", "--force", "--wait=false"
    )
    return at


async def test_kill_opens_one_ticket_and_resolves_it(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Real timings (time scale 1): the StatefulSet brings the pod back long before PD's 20 s
    # Disconnected threshold, so PD state alone never changes. The monitor must still see it.
    cluster = tikv_cluster_factory(time_scale=1.0, scrape_interval=1.0)
    async with RunningMonitor(cluster, tmp_path / "tickets.db") as m:
        killed_at = kill(cluster, "tikv-2")
        opened = await m.wait_for(
            lambda: m.db.find_for_store(cluster.pd_url, 3, killed_at), 15, "a ticket for store 3"
        )
        seen_at = time.time()
        ticket = await m.wait_for(_resolved(m.db, opened[0].id), 40, "the ticket to resolve after recovery")
        assert ticket.invariant == "store_unreachable" and ticket.pod == "tikv-2"
        assert "store_unreachable" in ticket.signals and "store_restarted" in ticket.signals
        assert "store_disconnected" not in ticket.signals  # came back before PD's 20 s threshold
        assert {o.source for o in ticket.observations} >= {"probe", "pd"}
        all_tickets = await m.db.recent(50)
        assert [t.id for t in all_tickets] == [ticket.id], "exactly one ticket, no duplicates across cycles"
        # The ticket is dated when the monitor decided: after the kill, before the test saw it
        # (how soon is the detection benchmark's to measure, benchmarks/ttd.py).
        assert killed_at <= opened[0].opened_at <= seen_at, (killed_at, opened[0].opened_at, seen_at)
        store = await m.pd.store(3)
        assert store.store.state_name == "Up"


def _resolved(db: TicketDB, ticket_id: int):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        t = await db.get(ticket_id)
        return t if t and t.status == TicketStatus.RESOLVED else None

    return check


async def test_detects_without_prometheus(tikv_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tikv_cluster.prometheus.stop()
    async with RunningMonitor(tikv_cluster, tmp_path / "tickets.db") as m:
        m.prom = None
        m.snapshotter.prom = PrometheusClient(
            f"http://127.0.0.1:{tikv_cluster.prometheus.port}"
        )  # now refused
        killed_at = kill(tikv_cluster, "tikv-0")
        [ticket] = await m.wait_for(
            lambda: m.db.find_for_store(tikv_cluster.pd_url, 1, killed_at), 15, "a ticket"
        )
        assert "store_unreachable" in ticket.signals
        assert [o.source for o in ticket.observations if o.signal == "store_unreachable"] == ["probe"]
        await m.snapshotter.prom.aclose()


async def test_pd_down_opens_pd_unhealthy_and_monitor_survives(tikv_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db_path = tmp_path / "tickets.db"
    health_port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "monitor",
            "--pd-address",
            tikv_cluster.pd_url,
            "--prometheus-url",
            tikv_cluster.prometheus.url,
            "--db",
            str(db_path),
            "--interval",
            "0.3",
            "--health-port",
            str(health_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        # Ready: it knows the cluster and a cycle went well, so what follows is PD going away,
        # not a monitor still starting.
        wait_until(lambda: _ready(health_port), patience(60), what="the monitor to be ready")
        tikv_cluster.admin("/emulator/pd", {"serving": False})

        async def pd_ticket():  # type: ignore[no-untyped-def]
            async with TicketDB(db_path) as db:
                return [t for t in await db.recent(10) if t.invariant == "pd_unhealthy"]

        deadline = time.monotonic() + patience(10)
        found = []
        while time.monotonic() < deadline and not found:
            found = await pd_ticket()
            await asyncio.sleep(0.2)
        assert found, "no pd_unhealthy ticket"
        assert "unreachable" in found[0].observations[0].detail
        assert proc.poll() is None, "the monitor crashed when PD went away"
        tikv_cluster.admin("/emulator/pd", {"serving": True})
        deadline = time.monotonic() + patience(10)
        while time.monotonic() < deadline:
            async with TicketDB(db_path) as db:
                t = await db.get(found[0].id)
            if t and t.status == TicketStatus.RESOLVED:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("pd_unhealthy did not resolve after PD came back")
        assert proc.poll() is None
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=patience(10))
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"Traceback" not in out, out.decode()[-2000:]


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
        return bool(r.status == 200)


def test_monitor_rejects_bad_interval() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "monitor", "--interval", "0"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "--interval must be > 0" in result.stderr
