"""Reaction: ChaosDemo created -> victim deleted, over >= 50 drills. Target: median <= 300 ms.

t0 is taken in this process just before the create call; the deletion time is the controller's
status.timeline.injectedAt (written right after the delete returns). Same host, same clock."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from kubernetes_asyncio import client, config

from benchmarks.common import summary, write
from benchmarks.harness import control_plane, opt_in, start_controller, start_monitor, wait
from controller.operator.kube import Kube
from controller.operator.status import parse_rfc3339
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB

DRILLS = 50
SPEC = {
    "diagnosis": {"enabled": False},
    "safety": {"requireHealthyCluster": False},
    "detection": {"timeoutSeconds": 10, "expectWithinSeconds": 10},
    "recovery": {"timeoutSeconds": 60},
}


async def no_open_tickets(db_path: Path) -> bool:
    async with TicketDB(db_path) as db:
        return not await db.open_tickets()


async def run_drills(kubeconfig: str, cluster: TikvCluster, db_path: Path) -> list[float]:
    await config.load_kube_config(config_file=kubeconfig)
    reactions = []
    async with client.ApiClient() as api:
        kube = Kube(api)
        for i in range(DRILLS):
            while len(await asyncio.to_thread(cluster.ready_tikv_pods)) < 3 or not await no_open_tickets(
                db_path
            ):
                await asyncio.sleep(0.2)
            name = f"r{i}"
            body = {
                "apiVersion": "chaos.operator.dev/v1alpha1",
                "kind": "ChaosDemo",
                "metadata": {"name": name},
                "spec": SPEC,
            }
            t0 = time.time()
            await kube.create_chaosdemo(cluster.namespace, body)
            while True:
                obj = await kube.get_chaosdemo(cluster.namespace, name)
                status = (obj or {}).get("status") or {}
                if status.get("phase") in ("Completed", "Failed", "Aborted"):
                    break
                await asyncio.sleep(0.1)
            injected = parse_rfc3339((status.get("timeline") or {}).get("injectedAt"))
            if injected:
                reactions.append(injected - t0)
            print(
                f"drill {i + 1}/{DRILLS}: {status.get('verdict')} reaction "
                f"{(injected - t0) * 1000 if injected else float('nan'):.0f} ms",
                flush=True,
            )
    return reactions


def main() -> None:
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=0.1,
            scrape_interval=0.5,
            status_ip_prefix="127.0.91",
        ).start()
        opt_in(cp, "tikv")
        db = Path(tmp) / "tickets.db"
        monitor = start_monitor(cluster, db, interval=0.5)
        controller = start_controller(cp, Path(tmp), db, cluster.pd_url)
        try:
            wait(lambda: "chaosdemo controller ready" in controller.log_path.read_text(errors="replace"), 30)
            reactions = asyncio.run(run_drills(str(cp.kubeconfig), cluster, db))
        finally:
            controller.stop()
            monitor.stop()
            cluster.stop()
    ms = [r * 1000 for r in reactions]
    result = summary(ms)
    write(
        "reaction",
        {
            "description": "ChaosDemo created (client) -> victim deleted (status.timeline.injectedAt), sequential drills",
            "drills": DRILLS,
            "reaction_ms": result,
            "target": "median <= 300 ms",
            "met": bool(ms) and result["median"] <= 300,
        },
    )


if __name__ == "__main__":
    main()
