"""Coverage in the terminal: a table per fault, then the proposals."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from controller.coverage.summary import Coverage


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def to_console(coverage: Coverage, console: Console | None = None) -> None:
    console = console or Console()
    if not coverage.faults:
        console.print("no drill recorded in that range")
        return
    for fault in coverage.faults:
        table = Table(title=f"{fault.fault}: {fault.drills} drill(s)")
        for column in ("source", "caught", "median", "p95", "worst", "why it missed (most misses)"):
            table.add_column(column, overflow="fold")
        for s in fault.sources:
            why = f"{s.dominant_miss} ({s.dominant_miss_count} of {s.missed})" if s.dominant_miss else "-"
            table.add_row(
                s.source, f"{s.caught}/{s.drills}", _s(s.ttd_median), _s(s.ttd_p95), _s(s.ttd_worst), why
            )
        console.print(table)
        for p in fault.proposals:
            console.print(f"  would catch it: [bold]{p.expr}[/] for: {p.for_seconds:g}s: {p.sentence}")
