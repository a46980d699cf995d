"""``chaosdemo tickets list|show``: the monitor's tickets."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("tickets", help="list or show the monitor's tickets")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--db", default="")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


# Columns by how much a reader needs them: a narrow terminal drops from the end of this list
# rather than cutting every column to a few letters.
TICKET_COLUMNS = ("id", "invariant", "pod", "status", "opened", "severity", "signals", "diagnoser", "subject")
COLUMNS_BY_WIDTH = ((140, 9), (110, 8), (90, 7), (70, 6), (0, 4))


def ticket_columns(width: int) -> list[str]:
    """The columns that fit a terminal ``width`` characters wide, in display order."""
    keep = next(n for min_width, n in COLUMNS_BY_WIDTH if width >= min_width)
    chosen = set(TICKET_COLUMNS[:keep])
    order = ("id", "opened", "invariant", "subject", "pod", "severity", "status", "signals", "diagnoser")
    return [c for c in order if c in chosen]


async def _main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.panel import Panel
    from rich.table import Table

    from controller.tickets import TicketDB
    from controller.ui.endpoints import resolve

    console = Console()
    async with TicketDB(resolve(tickets_db=args.db).tickets_db) as db:
        if args.action == "list":
            tickets = await db.recent(args.limit)
            if args.json:
                print(json.dumps([t.model_dump(mode="json") for t in tickets], indent=2))
                return 0
            table = Table(title="tickets")
            columns = ticket_columns(console.width)
            for col in columns:
                # Short fields never wrap; the signals list wraps rather than being cut.
                table.add_column(col, no_wrap=col != "signals", overflow="fold")
            for t in tickets:
                cells = {
                    "id": str(t.id),
                    "opened": time.strftime("%H:%M:%S", time.localtime(t.opened_at)),
                    "invariant": t.invariant,
                    "subject": t.subject,
                    "pod": t.pod or "-",
                    "severity": t.severity.value,
                    "status": t.status.value,
                    "signals": ", ".join(t.signals),
                    "diagnoser": t.diagnoser or "-",
                }
                table.add_row(*(cells[c] for c in columns))
            console.print(table)
            return 0
        if args.id is None:
            raise SystemExit("chaosdemo tickets show: give a ticket id")
        ticket = await db.get(args.id)
        if ticket is None:
            raise SystemExit(f"no ticket #{args.id}")
        if args.json:
            print(json.dumps(ticket.model_dump(mode="json"), indent=2))
            return 0
        console.print(
            f"[bold]ticket #{ticket.id}[/] {ticket.invariant} on {ticket.subject} ({ticket.status.value})"
        )
        for o in ticket.observations:
            console.print(f"  • {o.signal} via {o.source}: {o.detail}")
        if ticket.diagnosis_markdown:
            console.print(Panel(Markdown(ticket.diagnosis_markdown), title="diagnosis", border_style="green"))
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args))
