"""``chaosdemo probe``: read one key per region with TiKV's own client and print what each
request met, one JSON line per request (the prober a drill runs, alone)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from controller.logsetup import configure


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("probe", help="read one key per region through PD with TiKV's client; JSON lines out")
    p.add_argument("--pd", required=True, help="PD's address as a TiKV client takes it: host:port")
    p.add_argument(
        "--pd-http", default=None, help="PD's HTTP API for the region list (default: http://<--pd>)"
    )
    p.add_argument("--rate", type=float, default=10.0, help="requests a second, over all regions")
    p.add_argument("--deadline", type=float, default=1.0, help="seconds before a request counts as a stall")
    p.add_argument("--regions", type=int, default=64, help="probe at most this many regions (key order)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: on SIGTERM)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON lines here (default: stdout)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure()
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from controller.client_probe.prober import Prober, ProberError, connect
    from controller.client_probe.targets import probe_targets
    from controller.pd import PDClient

    async with PDClient(args.pd_http or f"http://{args.pd}") as pd:
        targets = await probe_targets(pd, args.regions)
    out = args.out.open("a") if args.out else sys.stdout

    def emit(record: Any) -> None:
        out.write(record.model_dump_json() + "\n")
        out.flush()

    try:
        client = await connect([args.pd])
    except ProberError as exc:
        print(f"chaosdemo probe: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.seconds is not None:
        loop.call_later(args.seconds, stop.set)
    print(f"probing {len(targets)} regions", file=sys.stderr, flush=True)
    await Prober(client, targets, rate=args.rate, deadline=args.deadline, on_record=emit).run(stop)
    return 0
