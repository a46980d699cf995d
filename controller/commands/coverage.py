"""``chaosdemo coverage``: which detection source caught which fault across the recorded drills,
how fast, why the others missed, and what would have caught it (a table, JSON or an HTML page)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("coverage", help="alert coverage across recorded drills")
    p.add_argument("--since", default="7d", help="how far back (e.g. 24h, 7d); default 7d")
    p.add_argument("--namespace", "-n", default=None, help="only drills in this namespace")
    p.add_argument("--schedule", default=None, help="only drills of this ChaosDemoSchedule")
    p.add_argument("--db", default="")
    p.add_argument("--prometheus", default="", help="replay proposals here (default: the configured one)")
    p.add_argument("--no-proposals", action="store_true", help="do not ask Prometheus")
    p.add_argument("--step", type=float, default=15.0, help="evaluation step of the replay, seconds")
    p.add_argument("--time-scale", type=float, default=1.0, help="scale of the proposals' for: (sandbox)")
    p.add_argument("--tikv-job", default="tikv")
    p.add_argument("--pd-job", default="pd")
    p.add_argument("--format", choices=["table", "json", "html"], default="table")
    p.add_argument("--output", "-o", type=Path, default=None)
    p.set_defaults(handler=run)


async def _main(args: argparse.Namespace) -> int:
    from controller.commands.output import write_or_print
    from controller.coverage import page
    from controller.coverage.collect import Query, collect
    from controller.coverage.proposals import ReplaySettings
    from controller.coverage.text import to_console
    from controller.pd.formats import parse_duration
    from controller.prom.client import PrometheusClient
    from controller.tickets import TicketDB
    from controller.ui.endpoints import resolve

    endpoints = resolve(prometheus_url=args.prometheus, tickets_db=args.db)
    now = time.time()
    query = Query(
        since=now - parse_duration(args.since),
        until=now,
        namespace=args.namespace,
        schedule=args.schedule,
        replay=ReplaySettings(
            step=args.step, tikv_job=args.tikv_job, pd_job=args.pd_job, time_scale=args.time_scale
        ),
    )
    prom = None if args.no_proposals else PrometheusClient(endpoints.prometheus_url, timeout=10)
    try:
        async with TicketDB(endpoints.tickets_db) as db:
            coverage = await collect(db, query, prom)
    finally:
        if prom is not None:
            await prom.aclose()
    if args.format == "table":
        to_console(coverage)
        return 0
    write_or_print(
        page.to_html(coverage) if args.format == "html" else coverage.model_dump_json(indent=2), args.output
    )
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))
