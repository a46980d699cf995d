"""The client prober (spec.impact.probe): what it costs the controller and how right it is.

One emulated cluster at time scale 0.3 (TiKV's 10-20 s election takes 3-6 s), the monitor and
the controller. KILLS pod-kill drills with the prober off, then the same number with it on (40
reads/s over the 24 regions, deadline 0.5 s), one after another. Cost: the controller process's
CPU seconds per drill (from /proc, utime + stime), its RSS after each drill and its peak RSS
after the plain half and after the probed half (plain first: the peak only grows). Accuracy: each probed drill's ``status.impact.client.unavailableSeconds`` against the
emulator's own record of the victim's election (died -> new leaders elected), in units of the
prober's per-region interval (its stated resolution)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import cpu_seconds, rss_mib, write
from benchmarks.harness import (
    chaosdemo_status,
    control_plane,
    no_open_tickets,
    opt_in,
    start_controller,
    start_monitor,
    wait,
)
from controller.sandbox.tikv import TikvCluster

KILLS = 10
TERMINAL = {"Completed", "Failed", "Aborted"}
PROBE = {"enabled": True, "requestsPerSecond": 40, "deadlineSeconds": 0.5, "baselineSeconds": 1}


def main() -> None:
    started = time.time()
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=0.3,
            status_ip_prefix="127.3.2",
            with_prometheus=False,
        ).start()
        opt_in(cp, "tikv")
        db = Path(tmp) / "tickets.db"
        monitor = start_monitor(cluster, db, interval=0.5, prometheus=False)
        controller = start_controller(cp, Path(tmp), db, cluster.pd_url, extra_env=cluster.client_env())
        runs: list[dict[str, object]] = []
        try:
            wait(lambda: "chaosdemo controller ready" in controller.log_path.read_text(errors="replace"), 60)
            assert controller.popen is not None
            pid = controller.popen.pid
            peak_plain = 0.0
            for i in range(2 * KILLS):
                probed = i >= KILLS
                if i == KILLS:
                    peak_plain = rss_mib(pid, "VmHWM")
                pod = f"tikv-{i % 3}"
                name = f"{'probed' if probed else 'plain'}-{i}"
                wait(lambda: no_open_tickets(db), 120, interval=1)
                cpu_before = cpu_seconds(pid)
                spec = {
                    "target": {"pod": pod},
                    "diagnosis": {"provider": "offline"},
                    "recovery": {"waitForLeadersSeconds": 0},
                    **({"impact": {"probe": PROBE}} if probed else {}),
                }
                body = {
                    "apiVersion": "chaos.operator.dev/v1alpha1",
                    "kind": "ChaosDemo",
                    "metadata": {"name": name},
                    "spec": spec,
                }
                cp.kubectl("apply", "-n", "tikv", "-f", "-", input=json.dumps(body))
                wait(lambda n=name: chaosdemo_status(cp, "tikv", n).get("phase") in TERMINAL, 300, interval=1)
                st = chaosdemo_status(cp, "tikv", name)
                run: dict[str, object] = {
                    "name": name,
                    "verdict": st.get("verdict"),
                    "controller_cpu_seconds": round(cpu_seconds(pid) - cpu_before, 3),
                    "controller_rss_mib": round(rss_mib(pid), 1),
                }
                client = (st.get("impact") or {}).get("client")
                if probed and client:
                    election = next(
                        e for e in reversed(cluster.admin_state()["elections"]) if e["pod"] == pod
                    )
                    truth = election["elected_at"] - election["died_at"]
                    run.update(
                        truth_seconds=round(truth, 3),
                        client_unavailable_seconds=client.get("unavailableSeconds"),
                        probe_interval_seconds=client.get("probeIntervalSeconds"),
                        error_in_intervals=round(
                            abs((client.get("unavailableSeconds") or 0) - truth)
                            / client["probeIntervalSeconds"],
                            2,
                        ),
                        client_regions_unavailable=client.get("regionsUnavailable"),
                        client_regions_still_unavailable=client.get("regionsStillUnavailable", 0),
                        election_regions=len(election["regions"]),
                        regions_right=client.get("regionsUnavailable") == len(election["regions"]),
                    )
                runs.append(run)
                print(json.dumps(run), flush=True)
            peak_all = rss_mib(pid, "VmHWM")
        finally:
            controller.stop()
            monitor.stop()
            cluster.stop()
    probed_runs = [r for r in runs if str(r["name"]).startswith("probed")]
    plain_runs = [r for r in runs if str(r["name"]).startswith("plain")]

    def mean_cpu(rs: list[dict[str, object]]) -> float:
        return round(sum(float(r["controller_cpu_seconds"]) for r in rs) / max(1, len(rs)), 3)  # type: ignore[arg-type]

    all_regions_right = all(r.get("regions_right") for r in probed_runs)
    errors = [float(r["error_in_intervals"]) for r in probed_runs if "error_in_intervals" in r]  # type: ignore[arg-type]
    write(
        "client_probe",
        {
            "description": f"{KILLS} pod-kill drills without the client prober, then {KILLS} with it "
            f"(40 reads/s, 24 regions, deadline 0.5 s), on one emulated cluster at time scale 0.3",
            "runs": runs,
            "controller_cpu_seconds_per_drill_probed": mean_cpu(probed_runs),
            "controller_cpu_seconds_per_drill_plain": mean_cpu(plain_runs),
            "controller_peak_rss_mib_plain": round(peak_plain, 1),
            "controller_peak_rss_mib_with_probed": round(peak_all, 1),
            "max_error_in_probe_intervals": max(errors) if errors else None,
            "regions_right": all_regions_right,
            "total_seconds": round(time.time() - started),
            "targets": "unavailable seconds within one probe interval of the emulator's election, and the "
            "unavailable regions exactly the victim's, every kill",
            "met": bool(errors) and len(errors) == KILLS and max(errors) <= 1.0 and all_regions_right,
        },
    )


if __name__ == "__main__":
    main()
