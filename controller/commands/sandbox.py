"""``chaosdemo sandbox up|down|status``: the whole stack as local processes (no Docker)."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "sandbox", help="a local control plane + emulated TiKV + Prometheus + monitor + controller"
    )
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--dir", type=Path, default=None, help="state and logs (default ~/.chaosdemo/sandbox)")
    p.add_argument("--time-scale", type=float, default=1.0, help="emulated TiKV/PD timings factor (1 = real)")
    p.set_defaults(handler=run)


def _build_binaries(console: Console) -> None:
    """Run tools/build.sh with a progress bar (the first build takes minutes)."""
    from controller.sandbox.binaries import BUILD_SCRIPT

    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    tail: list[str] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("building control-plane binaries", total=6)
        for line in proc.stdout:
            tail = [*tail, line.rstrip()][-20:]
            match = re.match(r"\[(\d+)/(\d+)\] (\S+): (\w+)", line)
            if match:
                done = int(match.group(1)) - (0 if match.group(4) in ("cached", "built") else 1)
                progress.update(
                    task,
                    completed=done,
                    total=int(match.group(2)),
                    description=f"{match.group(3)}: {match.group(4)}",
                )
    if proc.wait() != 0:
        raise SystemExit("building the control plane failed:\n" + "\n".join(tail))


def run(args: argparse.Namespace) -> int:
    from controller.sandbox import sandbox
    from controller.sandbox.binaries import MissingBinaryError, prometheus_binary, require_all

    console = Console()
    if args.action == "up":
        try:
            prometheus_binary()
        except MissingBinaryError as exc:
            raise SystemExit(str(exc)) from exc
        try:
            require_all()
        except MissingBinaryError:
            _build_binaries(console)
        state = sandbox.up(
            args.dir, time_scale=args.time_scale, log=lambda m: console.print(f"[cyan]•[/] {m}")
        )
        console.print(f"[green]sandbox up[/] — logs in {state.directory}/logs (and control-plane/logs)")
        console.print(f"PD {state.pd_url} · Prometheus {state.prometheus_url} · tickets {state.tickets_db}")
        console.print("Use it with kubectl:")
        print(f"export KUBECONFIG={state.kubeconfig}")
        return 0
    if args.action == "down":
        stopped = sandbox.down(args.dir)
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    current, alive = sandbox.status(args.dir)
    if current is None:
        console.print("no sandbox (run `chaosdemo sandbox up`)")
        return 1
    state = current
    table = Table(title=f"sandbox in {state.directory}")
    table.add_column("process")
    table.add_column("pid")
    table.add_column("state")
    for name, pid in state.pids.items():
        table.add_row(name, str(pid), "[green]running[/]" if alive[name] else "[red]stopped[/]")
    console.print(table)
    print(f"export KUBECONFIG={state.kubeconfig}")
    return 0 if all(alive.values()) else 1
