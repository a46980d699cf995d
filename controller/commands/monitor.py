"""``chaosdemo monitor``: the independent monitor process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import Any

from controller.logsetup import configure

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("monitor", help="watch PD and Prometheus, open and resolve tickets")
    p.add_argument("--pd-address", default=os.environ.get("CHAOSDEMO_PD_ADDRESS", "http://127.0.0.1:2379"))
    p.add_argument(
        "--prometheus-url",
        default=os.environ.get("CHAOSDEMO_PROMETHEUS_URL", ""),
        help="empty: run without Prometheus (probes and PD only)",
    )
    p.add_argument(
        "--pd-credentials-dir",
        default=os.environ.get("CHAOSDEMO_PD_CREDENTIALS_DIR", ""),
        help="PD over TLS: a directory with ca.crt (and tls.crt, tls.key), e.g. a mounted client Secret",
    )
    p.add_argument(
        "--prometheus-credentials-dir",
        default=os.environ.get("CHAOSDEMO_PROMETHEUS_CREDENTIALS_DIR", ""),
        help="Prometheus over TLS or with auth: ca.crt, tls.crt, tls.key; token, or username and password",
    )
    p.add_argument(
        "--db", default=os.environ.get("CHAOSDEMO_DB", "tickets.db"), help="the SQLite ticket file"
    )
    p.add_argument("--cluster", default="", help="cluster name on tickets (default: pd-<PD's cluster id>)")
    p.add_argument("--interval", type=float, default=float(os.environ.get("CHAOSDEMO_MONITOR_INTERVAL", "2")))
    p.add_argument("--resolve-after", type=int, default=3, help="clear cycles before a ticket resolves")
    p.add_argument("--no-probe", action="store_true", help="do not probe TiKV status ports directly")
    p.add_argument("--tikv-job", default="tikv", help="Prometheus job name of the TiKV targets")
    p.add_argument("--metrics-port", type=int, default=0, help="serve the monitor's own /metrics here")
    p.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("CHAOSDEMO_HEALTH_PORT", "0")),
        help="serve /healthz (liveness) and /readyz (readiness) here",
    )
    p.set_defaults(handler=run)


async def _main(args: argparse.Namespace) -> None:
    from prometheus_client import start_http_server

    from controller.httpaccess import PLAIN, access_from_dir
    from controller.monitor import health
    from controller.monitor.snapshot import Snapshotter
    from controller.pd import PDClient
    from controller.prom import PrometheusClient

    if args.metrics_port:
        start_http_server(args.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pd_access, prom_access = await asyncio.to_thread(
        lambda: [
            access_from_dir(d) if d else PLAIN
            for d in (args.pd_credentials_dir, args.prometheus_credentials_dir)
        ]
    )
    pd = PDClient(args.pd_address, tls=pd_access.tls)
    prom = PrometheusClient(args.prometheus_url, access=prom_access) if args.prometheus_url else None
    snapshotter = Snapshotter(pd, prom, probe=not args.no_probe, tikv_job=args.tikv_job)
    # Alive while it waits for PD; stale after a few missed cycles (a cycle may take long).
    heartbeat = health.Heartbeat(started_at=time.time(), stale_after=max(30.0, 5 * args.interval))
    server = await health.serve(heartbeat, args.health_port) if args.health_port else None
    try:
        cluster = args.cluster or await _cluster_name(pd, stop)
        if cluster is None:
            return
        heartbeat.cluster = cluster
        await _watch(args, snapshotter, cluster, stop, heartbeat)
    finally:
        await snapshotter.aclose()
        await pd.aclose()
        if prom:
            await prom.aclose()
        if server:
            await server.cleanup()


async def _watch(
    args: argparse.Namespace, snapshotter: Any, cluster: str, stop: asyncio.Event, heartbeat: Any
) -> None:
    from controller.monitor.loop import Monitor
    from controller.tickets import TicketDB

    async with TicketDB(args.db) as db:
        monitor = Monitor(
            snapshotter,
            db,
            cluster=cluster,
            interval=args.interval,
            resolve_after_cycles=args.resolve_after,
        )
        await monitor.run(stop, heartbeat)


async def _cluster_name(pd: Any, stop: asyncio.Event) -> str | None:
    """Tickets name the cluster by PD's cluster id (the controller does the same), so two
    spellings of one PD address are one cluster. Waits for PD to answer; None if stopped first."""
    from controller.pd import PDError
    from controller.pd.client import cluster_name

    while not stop.is_set():
        try:
            return cluster_name(await pd.cluster_id())
        except PDError as exc:
            log.warning("waiting for PD to learn the cluster id: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    return None


def run(args: argparse.Namespace) -> int:
    configure()
    if args.interval <= 0:
        raise SystemExit("chaosdemo monitor: --interval must be > 0")
    asyncio.run(_main(args))
    return 0
