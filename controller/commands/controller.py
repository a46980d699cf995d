"""``chaosdemo controller``: run the kopf operator."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from controller.logsetup import configure


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("controller", help="run the ChaosDemo operator (kopf)")
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only these namespaces (repeatable); default: the whole cluster",
    )
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    import controller.operator.handlers  # noqa: F401  (registers the handlers)

    configure(args.verbose)
    asyncio.run(kopf.operator(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace))
    return 0
