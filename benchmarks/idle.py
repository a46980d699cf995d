"""Idle cost: 1,000 settled ChaosDemos in one namespace; the controller's CPU and RSS while
nothing changes (targets: <= 2% of one core, <= 200 MiB).

The drills are created and given a finished status (phase Failed, observedGeneration = their
generation, as a drill that ran looks) before the controller starts; the controller then starts,
adds its finalizer to each, and is left alone for ``CHAOSDEMO_IDLE_SECONDS`` (default 300) while
its CPU time (utime + stime from /proc) and RSS are sampled.

``BENCH_LABEL`` names the run (``after``, ``before``); results merge into one file, so the same
script run with ``PYTHONPATH`` pointing at an older checkout records the "before" figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import cpu_seconds, machine, rss_mib, rss_peak_mib
from benchmarks.harness import control_plane, start_controller, wait

DRILLS = int(os.environ.get("CHAOSDEMO_IDLE_DRILLS", "1000"))
IDLE_SECONDS = float(os.environ.get("CHAOSDEMO_IDLE_SECONDS", "300"))
RESULTS = Path(__file__).resolve().parent / "results" / "idle.json"


async def settle_all(kubeconfig: Path) -> None:
    """Give every drill the status of a finished run, 20 patches at a time."""
    from kubernetes_asyncio import client, config

    await config.load_kube_config(config_file=str(kubeconfig))
    async with client.ApiClient() as api:
        custom = client.CustomObjectsApi(api)
        gate = asyncio.Semaphore(20)

        async def settle(i: int) -> None:
            async with gate:
                await custom.patch_namespaced_custom_object_status(
                    "chaos.operator.dev",
                    "v1alpha1",
                    "drills",
                    "chaosdemos",
                    f"d{i:04d}",
                    {
                        "status": {
                            "phase": "Failed",
                            "verdict": "Error",
                            "reason": "Seeded",
                            "observedGeneration": 1,
                        }
                    },
                    _content_type="application/merge-patch+json",  # type: ignore[call-arg]
                )

        await asyncio.gather(*(settle(i) for i in range(DRILLS)))


def main() -> None:
    label = os.environ.get("BENCH_LABEL", "after")
    with control_plane() as cp:
        cp.kubectl("create", "namespace", "drills")
        workdir = Path(cp.workdir).parent
        for batch in range(0, DRILLS, 100):
            items = [
                {
                    "apiVersion": "chaos.operator.dev/v1alpha1",
                    "kind": "ChaosDemo",
                    "metadata": {"name": f"d{i:04d}", "namespace": "drills"},
                    "spec": {"safety": {"dryRun": True}},
                }
                for i in range(batch, min(DRILLS, batch + 100))
            ]
            cp.kubectl(
                "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
            )
        asyncio.run(settle_all(cp.kubeconfig))
        started = time.time()
        controller = start_controller(cp, workdir, workdir / "tickets.db", "http://127.0.0.1:9")
        wait(lambda: "chaosdemo controller ready" in controller.log_path.read_text(errors="replace"), 60)

        def finalized() -> bool:
            out = json.loads(cp.kubectl("get", "chaosdemos", "-n", "drills", "-o", "json").stdout)["items"]
            return sum(bool(o["metadata"].get("finalizers")) for o in out) == DRILLS

        assert wait(finalized, 600, interval=5), "the controller did not take up every drill"
        settle_seconds = time.time() - started
        time.sleep(20)  # let the last watch events and timers drain
        pid = controller.popen.pid  # type: ignore[union-attr]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        rss: list[float] = []
        while time.monotonic() - t0 < IDLE_SECONDS:
            rss.append(rss_mib(pid))
            time.sleep(5)
        cpu_share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        run: dict[str, Any] = {
            "drills": DRILLS,
            "idle_seconds": IDLE_SECONDS,
            "startup_seconds": round(settle_seconds, 1),
            "cpu_percent_of_one_core": round(100 * cpu_share, 2),
            "rss_mib_median": round(sorted(rss)[len(rss) // 2], 1),
            "rss_mib_max": round(max(rss), 1),
            "rss_peak_mib": round(rss_peak_mib(pid), 1),
            "machine": machine(),
        }
        controller.stop()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(
        {
            "benchmark": "idle",
            "command": "python -m benchmarks.idle (BENCH_LABEL=before with PYTHONPATH at the older checkout)",
            "what": f"{DRILLS} settled ChaosDemos in one namespace; controller CPU and RSS over "
            f"{IDLE_SECONDS:.0f} s of idling",
            "target": "<= 2% of one core, <= 200 MiB",
        }
    )
    data.setdefault("runs", {})[label] = run
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
