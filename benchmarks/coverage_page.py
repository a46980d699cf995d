"""The coverage page for ten real drills of three faults: four pod kills, three store outages,
three PD leader kills, on the emulator at a fifth of real time with the standard rules (their
`for:` scaled), Alertmanager paging the controller's receiver, and a user's rule. Then
`chaosdemo coverage` with proposals replayed in the same Prometheus, the HTML page rendered in
headless Chromium (its screenshot written next to the results), its text boxes checked for
overlap. Recorded: the coverage per fault and source, and the proposals.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import write
from benchmarks.harness import control_plane, no_open_tickets, opt_in, run_drill, start_monitor, wait
from controller.coverage import page
from controller.coverage.collect import Query, collect
from controller.coverage.proposals import ReplaySettings
from controller.coverage.summary import Coverage
from controller.prom.client import PrometheusClient
from controller.sandbox.services import controller_process
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB

TIME_SCALE = 0.2
INTERVAL = 0.5
STORES = 7
SCREENSHOT = Path(tempfile.gettempdir()) / "chaosdemo-coverage.png"
USER_RULES = {
    "groups": [
        {
            "name": "team",
            "rules": [{"alert": "TiKVStoreUnreachable", "expr": 'up{job="tikv"} == 0', "for": "30s"}],
        }
    ]
}
SOURCES: list[dict[str, Any]] = [
    {"type": "tickets"},
    {
        "type": "prometheus",
        "name": "TiKV_node_restart",
        "alertnames": ["TiKV_node_restart"],
        "required": False,
    },
    {
        "type": "prometheus",
        "name": "PD_cluster_lost_connect_store_nums",
        "alertnames": ["PD_cluster_lost_connect_store_nums"],
        "required": False,
    },
    {
        "type": "prometheus",
        "name": "TiKVStoreUnreachable",
        "alertnames": ["TiKVStoreUnreachable"],
        "required": False,
    },
    {"type": "alertmanager-notification", "name": "page", "required": False},
]
DRILLS: list[dict[str, Any]] = [
    *({"target": {"pod": f"tikv-{i}"}, "fault": {"action": "pod-kill"}} for i in range(4)),
    *(
        {"target": {"pod": f"tikv-{i}"}, "fault": {"action": "store-outage", "durationSeconds": 10}}
        for i in range(4, 7)
    ),
    *({"target": {}, "fault": {"action": "pd-leader-kill"}} for _ in range(3)),
]


def main() -> None:
    with control_plane() as cp, tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "team-rules.yml"
        rules.write_text(yaml.safe_dump(USER_RULES))
        cluster = TikvCluster(
            control_plane=cp,
            workdir=Path(tmp) / "tikv",
            namespace="tikv",
            time_scale=TIME_SCALE,
            stores=STORES,
            status_ip_prefix="127.2.40",
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            with_alerting=True,
            extra_rule_files=(rules,),
        ).start()
        try:
            opt_in(cp, "tikv")
            db = Path(tmp) / "tickets.db"
            monitor = start_monitor(cluster, db, interval=0.5)
            assert cluster.prometheus
            controller = controller_process(
                kubeconfig=cp.kubeconfig,
                pd_url=cluster.pd_url,
                prometheus_url=cluster.prometheus.url,
                db=db,
                log_path=Path(tmp) / "controller.log",
                env={**cluster.alerting_env(), **cluster.client_env()},
            ).start()
            time.sleep(5)
            for n, drill in enumerate(DRILLS):
                assert wait(lambda: no_open_tickets(db), 120, interval=1)
                name = f"drill-{n}"
                spec = {
                    **drill,
                    "detection": {"timeoutSeconds": 30, "expectWithinSeconds": 30, "sources": SOURCES},
                    "diagnosis": {"provider": "offline"},
                    "recovery": {"waitForLeadersSeconds": 0},
                }
                st = run_drill(cp, "tikv", name, spec, 300)
                print(name, drill["fault"]["action"], st.get("verdict"), st.get("reason"), flush=True)
            controller.stop()
            monitor.stop()
            coverage = asyncio.run(_coverage(db, cluster.prometheus.url))
        finally:
            cluster.stop()
    html = Path(tempfile.gettempdir()) / "chaosdemo-coverage.html"
    html.write_text(page.to_html(coverage))
    overlaps = asyncio.run(_render(html))
    write(
        "coverage_page",
        {
            "what": "coverage of 10 drills (4 pod-kill, 3 store-outage, 3 pd-leader-kill) at time scale "
            f"{TIME_SCALE}; the HTML page rendered in headless Chromium",
            "screenshot": str(SCREENSHOT),
            "overlapping_text_pairs": overlaps,
            "faults": [
                {
                    "fault": f.fault,
                    "drills": f.drills,
                    "sources": [
                        {
                            "source": s.source,
                            "caught": f"{s.caught}/{s.drills}",
                            "median_ttd_s": s.ttd_median,
                            "worst_ttd_s": s.ttd_worst,
                            "dominant_miss": s.dominant_miss,
                        }
                        for s in f.sources
                    ],
                    "proposals": [f"{p.expr} for: {p.for_seconds:g}s: {p.sentence}" for p in f.proposals],
                }
                for f in coverage.faults
            ],
        },
    )


async def _coverage(db: Path, prometheus_url: str) -> Coverage:
    prom = PrometheusClient(prometheus_url, timeout=30)
    try:
        async with TicketDB(db) as tickets:
            replay = ReplaySettings(step=INTERVAL, time_scale=TIME_SCALE)
            return await collect(tickets, Query(since=0, until=time.time(), replay=replay), prom)
    finally:
        await prom.aclose()


async def _render(html: Path) -> int:
    """Render the page, save its screenshot, count overlapping text boxes in its strips."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.integration.test_report_layout import STRIP_BOXES, _overlap
    from tests.support.browser import browser_page

    async with browser_page() as tab:
        await tab.open(html.as_uri())
        strips = await tab.evaluate(STRIP_BOXES)
        await tab.screenshot(SCREENSHOT)
    return sum(_overlap(a, b) for s in strips for i, a in enumerate(s["texts"]) for b in s["texts"][i + 1 :])


if __name__ == "__main__":
    main()
