"""``chaosdemo report NAME``: a drill's timeline, TTD, TTR, impact and diagnosis, as Markdown,
JSON or one self-contained HTML page."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("report", help="report on one ChaosDemo drill")
    p.add_argument("name")
    p.add_argument("--namespace", "-n", default="tikv")
    p.add_argument("--format", choices=["markdown", "json", "html"], default="markdown")
    p.add_argument("--output", "-o", type=Path, default=None)
    p.add_argument("--db", default="")
    p.set_defaults(handler=run)


async def _main(args: argparse.Namespace) -> int:
    from kubernetes_asyncio import client, config

    from controller.commands.output import write_or_print
    from controller.operator.kube import Kube
    from controller.tickets import TicketDB
    from controller.ui import html_report, report
    from controller.ui.endpoints import resolve

    endpoints = resolve(tickets_db=args.db)
    await config.load_kube_config(config_file=endpoints.kubeconfig)
    async with client.ApiClient() as api:
        obj = await Kube(api).get_chaosdemo(args.namespace, args.name)
    if obj is None:
        raise SystemExit(f"no ChaosDemo {args.namespace}/{args.name}")
    ticket = None
    ticket_id = ((obj.get("status") or {}).get("incident") or {}).get("ticketId")
    if ticket_id and await asyncio.to_thread(Path(endpoints.tickets_db).exists):
        async with TicketDB(endpoints.tickets_db) as db:
            ticket = await db.get(ticket_id)
    data = report.build(obj, ticket)
    render = {"json": report.to_json, "html": html_report.to_html, "markdown": report.to_markdown}[
        args.format
    ]
    write_or_print(render(data), args.output)
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))
