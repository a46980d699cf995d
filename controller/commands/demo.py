"""``chaosdemo demo``: a staged drill against the current kubeconfig (sandbox or kind)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

# The example drill beside the source tree (a checkout); in the image, pass --manifest.
EXAMPLE = Path(__file__).resolve().parents[2] / "chaosdemo.yaml"
YCSB_JOB = Path(__file__).resolve().parents[2] / "manifests" / "load" / "go-ycsb-job.yaml"


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("demo", help="run one drill as a staged live show")
    p.add_argument("--yes", "-y", action="store_true", help="no prompts (also implied without a terminal)")
    p.add_argument("--namespace", "-n", default="tikv")
    p.add_argument("--manifest", type=Path, default=EXAMPLE)
    p.add_argument("--pd-address", default="")
    p.add_argument("--prometheus-url", default="")
    p.add_argument("--db", default="", help="the ticket file, to show the full diagnosis")
    p.add_argument(
        "--fault",
        choices=["pod-kill", "store-outage", "pd-leader-kill", "network-partition"],
        default="",
        help="the fault to inject (default: the manifest's, pod-kill in the example)",
    )
    p.add_argument(
        "--duration",
        type=int,
        default=30,
        help="store-outage and network-partition: seconds the store stays stopped or cut off (default 30)",
    )
    p.add_argument("--load-seconds", type=float, default=5.0)
    p.add_argument(
        "--ycsb-job",
        type=Path,
        default=YCSB_JOB,
        help="on a real cluster, the go-ycsb Job started before the fault (deleted at cleanup)",
    )
    p.set_defaults(handler=run)


async def _main(args: argparse.Namespace) -> int:
    from kubernetes_asyncio import client, config
    from rich.console import Console

    from controller.operator.kube import Kube
    from controller.ui.demo import Demo
    from controller.ui.endpoints import resolve

    endpoints = resolve(args.pd_address, args.prometheus_url, args.db)
    await config.load_kube_config(config_file=endpoints.kubeconfig)
    async with client.ApiClient() as api:
        demo = Demo(
            Console(),
            Kube(api),
            endpoints,
            namespace=args.namespace,
            manifest=args.manifest,
            yes=args.yes,
            load_seconds=args.load_seconds,
            ycsb_job=args.ycsb_job,
            fault=args.fault,
            duration=args.duration,
        )
        return await demo.run()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130
