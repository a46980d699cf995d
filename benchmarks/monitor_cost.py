"""Monitor cost per cycle at 3, 100 and 1,000 stores, against emulated PD payloads.

PD's API is served by the emulator's PD app in a separate process (so only the monitor's own
work is timed); the monitor runs its real snapshot -> invariants -> ticket cycle on a real SQLite
file, without Prometheus and without direct probes (1,000 status servers would measure the
emulator, not the monitor). CPU time is the monitor process's own (time.process_time).
Target: <= 50 ms of CPU per cycle at 1,000 stores."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path

from benchmarks.common import summary, write

CYCLES = 30


def _serve_pd(port: int, stores: int, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    from aiohttp import web

    from controller.emulator.model import EmulatedCluster
    from controller.emulator.pd_api import make_pd_app

    cluster = EmulatedCluster(region_count=max(24, stores * 8))
    for i in range(stores):
        cluster.pod_ready(f"tikv-{i}")

    async def main() -> None:
        runner = web.AppRunner(make_pd_app(cluster, f"http://127.0.0.1:{port}"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(pd_url: str, db_path: Path) -> dict[str, object]:
    from controller.monitor.invariants import Memory, evaluate
    from controller.monitor.loop import Monitor
    from controller.monitor.snapshot import Snapshotter
    from controller.pd import PDClient
    from controller.tickets import TicketDB

    pd = PDClient(pd_url, timeout=30)
    snapshotter = Snapshotter(pd, None, probe=False)
    async with TicketDB(db_path) as db:
        monitor = Monitor(snapshotter, db, cluster=pd_url, interval=1)
        await monitor.cycle()  # warm-up (connections, baseline)
        cpu, wall = [], []
        for _ in range(CYCLES):
            c0, w0 = time.process_time(), time.perf_counter()
            await monitor.cycle()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        snap = await snapshotter.take()
        e0 = time.process_time()
        for _ in range(10):
            evaluate(snap, Memory())
        evaluate_ms = (time.process_time() - e0) * 100
    await snapshotter.aclose()
    await pd.aclose()
    return {"cpu_ms": summary(cpu), "wall_ms": summary(wall), "evaluate_cpu_ms": round(evaluate_ms, 2)}


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    rows = {}
    for stores in (3, 100, 1000):
        port = free_port()
        ready = ctx.Event()
        server = ctx.Process(target=_serve_pd, args=(port, stores, ready), daemon=True)
        server.start()
        ready.wait(120)
        with tempfile.TemporaryDirectory() as tmp:
            rows[str(stores)] = asyncio.run(measure(f"http://127.0.0.1:{port}", Path(tmp) / "t.db"))
        server.terminate()
        server.join()
        print(stores, rows[str(stores)]["cpu_ms"])
    at_1000 = rows["1000"]["cpu_ms"]["median"]  # type: ignore[index]
    write(
        "monitor_cost",
        {
            "description": "monitor CPU per cycle (snapshot of PD's stores, health and 3 region checks; "
            "invariants; ticket sync) with PD served by the emulator in another process",
            "cycles": CYCLES,
            "by_stores": rows,
            "target": "<= 50 ms CPU per cycle at 1,000 stores",
            "met": at_1000 <= 50,
        },
    )


if __name__ == "__main__":
    main()
