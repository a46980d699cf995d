"""Time-to-detect per source over 10 pod kills at realistic timings: the ChaosDemo monitor, and
the standard TiKV/PD alert rules in a real Prometheus (scrape and evaluation every 15 s, as real
deployments) sending to a real Alertmanager, which pages the controller's webhook receiver
(group_wait 30 s, its default). Each kill is a ChaosDemo drill; what the status records per
source is what is summarised. Then the coverage of the ten drills, with the proposals for what
the standard rules missed replayed over the drills' windows in the same Prometheus.

Five stores, killed in turn, so that no store is killed again within the 5 minutes in which
TiKV_node_restart (changes(...[5m])) still fires for its previous kill.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import summary, write
from benchmarks.harness import control_plane, opt_in, run_drill, start_monitor, wait
from controller.coverage.collect import Query, collect
from controller.coverage.proposals import ReplaySettings
from controller.coverage.summary import Coverage
from controller.prom.client import PrometheusClient
from controller.sandbox.services import controller_process
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB
from controller.timefmt import parse_rfc3339

KILLS = 10
STORES = 5
INTERVAL = 15.0
SOURCES: list[dict[str, Any]] = [
    {"type": "tickets"},
    {"type": "prometheus", "name": "TiKV_node_restart", "alertnames": ["TiKV_node_restart"]},
    {
        "type": "prometheus",
        "name": "PD_cluster_lost_connect_store_nums",
        "alertnames": ["PD_cluster_lost_connect_store_nums"],
        "required": False,
    },
    {
        "type": "prometheus",
        "name": "TiKV_server_report_failure_msg_total",
        "alertnames": ["TiKV_server_report_failure_msg_total"],
        "required": False,
    },
    {"type": "alertmanager", "name": "alertmanager", "alertnames": ["TiKV_node_restart"]},
    {"type": "alertmanager-notification", "name": "page", "alertnames": ["TiKV_node_restart"]},
]
TERMINAL = {"Completed", "Failed", "Aborted"}
# `--fault network-partition`: five stores cut off from PD and their peers in turn, for two
# minutes each (long enough for PD's 20 s and the disconnect rule's for: 1m at 15 s intervals).
PARTITIONS = 5
PARTITION_SECONDS = 120
PARTITION_SOURCES: list[dict[str, Any]] = [
    {"type": "tickets"},
    {
        "type": "prometheus",
        "name": "PD_cluster_lost_connect_store_nums",
        "alertnames": ["PD_cluster_lost_connect_store_nums"],
    },
    {
        "type": "prometheus",
        "name": "TiKV_server_report_failure_msg_total",
        "alertnames": ["TiKV_server_report_failure_msg_total"],
        "required": False,
    },
    {
        "type": "prometheus",
        "name": "TiKV_node_restart",
        "alertnames": ["TiKV_node_restart"],
        "required": False,
    },
]


def main() -> None:
    partition = "--fault" in sys.argv and sys.argv[sys.argv.index("--fault") + 1] == "network-partition"
    drills, sources = (PARTITIONS, PARTITION_SOURCES) if partition else (KILLS, SOURCES)
    per_source: dict[str, list[float]] = {s.get("name", s["type"]): [] for s in sources}
    missed: dict[str, Counter[str]] = {name: Counter() for name in per_source}
    verdicts: Counter[str] = Counter()
    categories: Counter[str] = Counter()  # the blind diagnosis of each drill
    page_delays: list[float] = []  # the page's arrival minus the alert's startsAt
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=1.0,
            stores=STORES,
            status_ip_prefix="127.2.30",
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            with_alerting=True,
        ).start()
        try:
            opt_in(cp, "tikv")
            db = Path(tmp) / "tickets.db"
            monitor = start_monitor(cluster, db, interval=2.0)
            assert cluster.prometheus and cluster.alertmanager
            controller = controller_process(
                kubeconfig=cp.kubeconfig,
                pd_url=cluster.pd_url,
                prometheus_url=cluster.prometheus.url,
                db=db,
                log_path=Path(tmp) / "controller.log",
                env=cluster.alerting_env(),
            ).start()
            time.sleep(2 * INTERVAL)  # every target scraped twice before the first kill
            for i in range(drills):
                name = f"{'partition' if partition else 'kill'}-{i}"
                spec: dict[str, Any] = {
                    "target": {"pod": f"tikv-{i % STORES}"},
                    "detection": {"timeoutSeconds": 150, "expectWithinSeconds": 120, "sources": sources},
                    "diagnosis": {"provider": "offline"},
                    "recovery": {"waitForLeadersSeconds": 0},
                }
                if partition:
                    spec["fault"] = {"action": "network-partition", "durationSeconds": PARTITION_SECONDS}
                    # The disconnect rule is cluster-wide: still firing for the previous partition,
                    # it would be "already active" for this one. A user spaces drills the same way.
                    wait(lambda: not _firing(cluster.prometheus.url), 300, interval=5)
                st = run_drill(cp, "tikv", name, spec, 400)
                verdicts[st.get("verdict") or "?"] += 1
                categories[(st.get("diagnosis") or {}).get("rootCauseCategory") or "?"] += 1
                for src in st["detection"]["sources"]:
                    if src["state"] == "Detected" and src.get("alertStartedAt"):
                        page_delays.append(
                            parse_rfc3339(src["firingAt"]) - parse_rfc3339(src["alertStartedAt"])
                        )
                    if src["state"] == "Detected":
                        per_source[src["name"]].append(src["ttdSeconds"])
                    else:
                        missed[src["name"]][(src.get("why") or src["state"])[:160]] += 1
                print(
                    f"{name}: {st.get('verdict')} {[(s['name'], s['state'], s.get('ttdSeconds')) for s in st['detection']['sources']]}",
                    flush=True,
                )
            controller.stop()
            monitor.stop()
            coverage = asyncio.run(_coverage(db, cluster.prometheus.url))
        finally:
            cluster.stop()
    what = (
        f"{PARTITIONS} network partitions (from PD and peers, {PARTITION_SECONDS} s each) at time scale 1, "
        f"{STORES} stores cut off in turn; TTD per detection source from the drill's status (firing time "
        "minus the cut), with each drill's verdict and diagnosis"
        if partition
        else f"{KILLS} pod kills (grace 0) at time scale 1, {STORES} stores killed in turn; TTD per "
        "detection source from the drill's status (firing time minus the kill)"
    )
    write(
        "alert_ttd_partition" if partition else "alert_ttd",
        command="python -m benchmarks.alert_ttd" + (" --fault network-partition" if partition else ""),
        data={
            "what": what,
            "settings": {
                "scrape_interval_s": INTERVAL,
                "evaluation_interval_s": INTERVAL,
                "rules": "manifests/prometheus/alert-rules.yml (for: 1m each)",
                "monitor_interval_s": 2.0,
            },
            "verdicts": dict(verdicts),
            "diagnosed_as": dict(categories),
            "sources": {
                name: {
                    "detected": len(values),
                    "of": drills,
                    "ttd": summary(values),
                    "missed_because": dict(missed[name]),
                }
                for name, values in per_source.items()
            },
            "page_delay_after_startsAt": summary(page_delays),
            "proposals": [
                {"fault": f.fault, "expr": p.expr, "for_s": p.for_seconds, "result": p.sentence}
                for f in coverage.faults
                for p in f.proposals
            ],
        },
    )


def _firing(prometheus_url: str) -> bool:
    """Any alert firing or pending in Prometheus now?"""
    query = urllib.parse.urlencode({"query": "ALERTS"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=10) as r:
        return bool(json.load(r)["data"]["result"])


async def _coverage(db: Path, prometheus_url: str) -> Coverage:
    """The ten drills' coverage, with each proposal replayed at the rules' 15 s interval."""
    async with TicketDB(db) as tickets:
        prom = PrometheusClient(prometheus_url, timeout=30)
        try:
            return await collect(
                tickets, Query(since=0, until=time.time(), replay=ReplaySettings(step=INTERVAL)), prom
            )
        finally:
            await prom.aclose()


if __name__ == "__main__":
    main()
