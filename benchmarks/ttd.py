"""Time-to-detect over >= 20 pod kills at realistic (unscaled) emulator timings, next to two
baselines measured on the same kills: PD's store state alone, and Prometheus `up` at a 15 s
scrape interval. Target: median <= 3 s, p95 <= 6 s.

The stack: the real control plane (StatefulSet controller recreating the pod, kwok making the
replacement Ready after 1-3 s), the emulator at time scale 1 (heartbeats every 10 s, Disconnected
after 20 s), the monitor at its default 2 s interval with a 1 s Prometheus and direct probes, and
a second Prometheus scraping the same targets every 15 s for the baseline."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import summary, write
from benchmarks.harness import control_plane, start_monitor, wait
from controller.sandbox.prometheus import Prometheus
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB

KILLS = 20


def pd_state(cluster: TikvCluster, store_id: int) -> tuple[str, int]:
    with urllib.request.urlopen(f"{cluster.pd_url}/pd/api/v1/store/{store_id}", timeout=2) as r:
        body = json.load(r)
    return body["store"]["state_name"], body["store"]["start_timestamp"]


async def ticket_for(db_path: Path, cluster: TikvCluster, store_id: int, since: float) -> float | None:
    async with TicketDB(db_path) as db:
        tickets = await db.find_for_store(cluster.ticket_cluster, store_id, since - 1)
        return tickets[0].opened_at if tickets else None


async def open_count(db_path: Path) -> int:
    async with TicketDB(db_path) as db:
        return len(await db.open_tickets())


def first_zero_after(prom: Prometheus, instance: str, since: float) -> float | None:
    result = prom.query(f'up{{job="tikv",instance="{instance}"}}[120s]')
    for ts, value in result[0]["values"] if result else []:
        if float(ts) > since and float(value) == 0.0:
            return float(ts)
    return None


def main() -> None:
    rng = random.Random(42)
    ttd, pd_only, prom15 = [], [], []
    pd_misses = prom_misses = monitor_misses = 0
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=1.0,
            scrape_interval=1.0,
            status_ip_prefix="127.0.90",
        ).start()
        assert cluster.prometheus is not None
        slow = Prometheus(
            Path(tmp) / "prom15",
            f"127.0.0.1:{cluster.pd_port}",
            cluster.workdir / "tikv-targets.json",
            scrape_interval=15.0,
        ).start()
        db = Path(tmp) / "tickets.db"
        monitor = start_monitor(cluster, db, interval=2.0)
        time.sleep(20)  # let the slow Prometheus discover (5 s) and scrape (15 s) every target
        try:
            for i in range(KILLS):
                wait(lambda: asyncio.run(open_count(db)) == 0 and len(cluster.ready_tikv_pods()) == 3, 60)
                pod = f"tikv-{rng.randrange(3)}"
                store_id = int(pod.split("-")[1]) + 1
                _, start_before = pd_state(cluster, store_id)
                time.sleep(rng.uniform(0, 2))  # do not phase-lock kills to the monitor's cycle
                killed = time.time()
                cp.kubectl("delete", "pod", pod, "-n", "tikv", "--grace-period=0", "--force", "--wait=false")
                pd_seen = None
                deadline = time.time() + 45
                while time.time() < deadline:
                    state, start = pd_state(cluster, store_id)
                    if state != "Up" and pd_seen is None:
                        pd_seen = time.time()
                    if state == "Up" and start != start_before and time.time() - killed > 6:
                        break
                    time.sleep(0.25)
                opened = asyncio.run(ticket_for(db, cluster, store_id, killed))
                if opened is None:
                    monitor_misses += 1
                else:
                    ttd.append(opened - killed)
                if pd_seen is None:
                    pd_misses += 1
                else:
                    pd_only.append(pd_seen - killed)
                zero = first_zero_after(slow, f"127.0.90.{store_id}:20180", killed)
                if zero is None:
                    prom_misses += 1
                else:
                    prom15.append(zero - killed)
                print(
                    f"kill {i + 1}/{KILLS} {pod}: monitor {opened and opened - killed}, PD {pd_seen and pd_seen - killed},"
                    f" prom15 {zero and zero - killed}",
                    flush=True,
                )
        finally:
            monitor.stop()
            slow.stop()
            cluster.stop()
    result = summary(ttd)
    write(
        "ttd",
        {
            "description": "pod kills (grace 0) at realistic timings; TTD = ticket opened_at - kill time",
            "kills": KILLS,
            "monitor": {**result, "missed": monitor_misses},
            "baseline_pd_state_only": {
                **summary(pd_only),
                "missed": pd_misses,
                "note": "PD changes state only after 20 s without a heartbeat",
            },
            "baseline_prometheus_up_15s": {
                **summary(prom15),
                "missed": prom_misses,
                "note": "first up==0 sample of a 15 s scrape after the kill",
            },
            "target": "median <= 3 s, p95 <= 6 s",
            "met": bool(ttd) and result["median"] <= 3 and result["p95"] <= 6 and monitor_misses == 0,
        },
    )


if __name__ == "__main__":
    main()
