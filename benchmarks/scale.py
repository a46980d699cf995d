"""Scale: 200 ChaosDemos created at once across 20 emulated TiKV clusters (namespaces).

All must reach a terminal phase, no two drills on one target may overlap; measured: the
controller's peak RSS (target <= 200 MiB) and its event-loop lag (target p99 <= 100 ms, from its
own chaosdemo_event_loop_lag_seconds histogram). Each cluster has its own emulator and monitor
(probes and PD, no Prometheus: 20 Prometheus servers would measure Prometheus)."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import rss_peak_mib, write
from benchmarks.harness import control_plane, opt_in, start_controller, start_monitor, wait
from controller.operator.status import parse_rfc3339
from controller.sandbox.processes import free_port
from controller.sandbox.tikv import TikvCluster

CLUSTERS = 20
PER_CLUSTER = 10
TERMINAL = {"Completed", "Failed", "Aborted"}


def lag_quantile(metrics_text: str, q: float) -> float:
    buckets = [
        (float(m.group(1)) if m.group(1) != "+Inf" else float("inf"), float(m.group(2)))
        for m in re.finditer(
            r'chaosdemo_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)', metrics_text
        )
    ]
    total = buckets[-1][1] if buckets else 0
    for le, count in buckets:
        if total and count >= q * total:
            return le
    return float("nan")


def main() -> None:
    started = time.time()
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        clusters, monitors = [], []
        try:
            for i in range(CLUSTERS):
                ns = f"tikv-{i:02d}"
                c = TikvCluster(
                    control_plane=cp,
                    workdir=Path(tmp) / ns,
                    namespace=ns,
                    time_scale=0.1,
                    status_ip_prefix=f"127.1.{i}",
                    with_prometheus=False,
                ).start()
                opt_in(cp, ns)
                clusters.append(c)
                monitors.append(start_monitor(c, Path(tmp) / "tickets.db", interval=1.0, prometheus=False))
                print(f"cluster {ns} up", flush=True)
            metrics_port = free_port()
            controller = start_controller(
                cp, Path(tmp), Path(tmp) / "tickets.db", clusters[0].pd_url, metrics_port=metrics_port
            )
            wait(lambda: "chaosdemo controller ready" in controller.log_path.read_text(errors="replace"), 60)
            docs = []
            for c in clusters:
                for j in range(PER_CLUSTER):
                    docs.append(
                        json.dumps(
                            {
                                "apiVersion": "chaos.operator.dev/v1alpha1",
                                "kind": "ChaosDemo",
                                "metadata": {"name": f"d{j}", "namespace": c.namespace},
                                "spec": {
                                    "target": {"pdAddress": c.pd_url},
                                    "diagnosis": {"provider": "offline"},
                                    "detection": {"timeoutSeconds": 30, "expectWithinSeconds": 10},
                                    "recovery": {"timeoutSeconds": 120},
                                },
                            }
                        )
                    )
            created_at = time.time()
            cp.kubectl("apply", "-f", "-", input="\n---\n".join(docs))
            print(f"created {len(docs)} ChaosDemos", flush=True)

            def statuses() -> list[dict]:
                items = json.loads(cp.kubectl("get", "chaosdemos", "-A", "-o", "json").stdout)["items"]
                return [
                    dict(i.get("status") or {}, ns=i["metadata"]["namespace"], name=i["metadata"]["name"])
                    for i in items
                ]

            done = wait(lambda: all(s.get("phase") in TERMINAL for s in statuses()), 3000, interval=5)
            elapsed = time.time() - created_at
            final = statuses()
            peak = rss_peak_mib(controller.pid or 0)
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                metrics_text = r.read().decode()
            controller.stop()
        finally:
            for m in monitors:
                m.stop()
            for c in clusters:
                c.stop()
    overlaps = 0
    for c in {s["ns"] for s in final}:
        windows = sorted(
            (parse_rfc3339(s["timeline"]["injectedAt"]), parse_rfc3339(s["timeline"]["completedAt"]))
            for s in final
            if s["ns"] == c and (s.get("timeline") or {}).get("injectedAt")
        )
        overlaps += sum(1 for a, b in itertools.pairwise(windows) if a[1] > b[0])
    verdicts: dict[str, int] = {}
    for s in final:
        verdicts[f"{s.get('phase')}/{s.get('verdict')}/{s.get('reason')}"] = (
            verdicts.get(f"{s.get('phase')}/{s.get('verdict')}/{s.get('reason')}", 0) + 1
        )
    lag_p99 = lag_quantile(metrics_text, 0.99)
    write(
        "scale",
        {
            "description": f"{CLUSTERS * PER_CLUSTER} ChaosDemos applied at once, {PER_CLUSTER} per cluster, "
            f"{CLUSTERS} emulated clusters (3 TiKV + 3 PD pods each) on one control plane",
            "all_terminal": done,
            "seconds_to_all_terminal": round(elapsed, 1),
            "outcomes": verdicts,
            "overlapping_drills_on_one_target": overlaps,
            "controller_peak_rss_mib": round(peak, 1),
            "event_loop_lag_p99_seconds_upper_bound": lag_p99,
            "total_seconds": round(time.time() - started),
            "targets": "all terminal, no overlap, peak RSS <= 200 MiB, event-loop lag p99 <= 100 ms",
            "met": done and overlaps == 0 and peak <= 200 and lag_p99 <= 0.1,
        },
    )


if __name__ == "__main__":
    main()
