"""Monitor precision under probe jitter: a healthy cluster whose TiKV status ports answer late (up
to JITTER_DELAY s) and sometimes not at all (JITTER_DROP of the answers fail), as GC pauses and
slow nodes make them. Over SOAK_SECONDS no ticket may open; then, with the jitter still on, pod
kills must still be detected (median TTD <= 1.5 s).

The stack is the ttd benchmark's: real control plane, emulator at time scale 1, the monitor at
its default 2 s interval with a 1 s Prometheus and direct probes."""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import summary, write
from benchmarks.harness import control_plane, start_monitor, wait
from controller.monitor.snapshot import PROBE_CONFIRM_DELAY, PROBE_CONFIRMATIONS
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB

SOAK_SECONDS = float(os.environ.get("CHAOSDEMO_SOAK_SECONDS", "300"))
KILLS = 10
JITTER_DELAY = 0.5
JITTER_DROP = 0.05


async def tickets_since(db_path: Path, since: float) -> list[tuple[str, str, float]]:
    async with TicketDB(db_path) as db:
        return [(t.invariant, t.subject, t.opened_at) for t in await db.recent(1000) if t.opened_at >= since]


async def open_tickets(db_path: Path) -> int:
    async with TicketDB(db_path) as db:
        return len(await db.open_tickets())


async def ticket_for(db_path: Path, cluster_name: str, store_id: int, since: float) -> float | None:
    async with TicketDB(db_path) as db:
        tickets = await db.find_for_store(cluster_name, store_id, since - 1)
        return tickets[0].opened_at if tickets else None


def main() -> None:
    rng = random.Random(7)
    ttd: list[float] = []
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=1.0,
            scrape_interval=1.0,
            status_ip_prefix="127.2.92",
        ).start()
        db = Path(tmp) / "tickets.db"
        monitor = start_monitor(cluster, db, interval=2.0)
        try:
            time.sleep(5)
            request = urllib.request.Request(
                f"{cluster.admin_url}/emulator/jitter",
                data=json.dumps({"delay_max_s": JITTER_DELAY, "drop_ratio": JITTER_DROP}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(request, timeout=5).close()
            soak_started = time.time()
            time.sleep(SOAK_SECONDS)
            false_tickets = asyncio.run(tickets_since(db, soak_started))
            print(f"soak: {len(false_tickets)} ticket(s) in {SOAK_SECONDS:.0f}s: {false_tickets}", flush=True)
            name = cluster.ticket_cluster
            for i in range(KILLS):
                wait(lambda: len(cluster.ready_tikv_pods()) == 3, 60)
                # As a drill's preflight does: the last incident's ticket is resolved first (a kill
                # while it is open joins it rather than opening a new one); then a random pause,
                # so kills do not phase-lock with the monitor's cycle.
                wait(lambda: not asyncio.run(open_tickets(db)), 60)
                time.sleep(rng.uniform(0, 2))
                pod = f"tikv-{rng.randrange(3)}"
                store_id = int(pod.split("-")[1]) + 1
                killed = time.time()
                cp.kubectl("delete", "pod", pod, "-n", "tikv", "--grace-period=0", "--force", "--wait=false")
                wait(lambda s=store_id, k=killed: asyncio.run(ticket_for(db, name, s, k)) is not None, 30)
                opened = asyncio.run(ticket_for(db, name, store_id, killed))
                if opened is not None:
                    ttd.append(opened - killed)
                print(f"kill {i + 1}/{KILLS} {pod}: TTD {opened and opened - killed}", flush=True)
        finally:
            monitor.stop()
            cluster.stop()
    result = summary(ttd)
    write(
        "soak",
        {
            "description": f"{SOAK_SECONDS:.0f} s of a healthy cluster with probe jitter, then {KILLS} pod kills "
            "with the jitter still on",
            "jitter": {"delay_max_s": JITTER_DELAY, "drop_ratio": JITTER_DROP, "on": "each /status answer"},
            "monitor": {
                "interval_s": 2.0,
                "probe_timeout_s": 1.0,
                "confirmations": f"{PROBE_CONFIRMATIONS} more probes, {PROBE_CONFIRM_DELAY} s apart",
            },
            "false_tickets": len(false_tickets),
            "false_ticket_list": false_tickets,
            "ttd": {**result, "missed": KILLS - len(ttd)},
            "target": "no ticket during the soak; kills detected, median TTD <= 1.5 s",
            "met": not false_tickets and len(ttd) == KILLS and result["median"] <= 1.5,
        },
    )


if __name__ == "__main__":
    main()
