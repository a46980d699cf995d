"""``chaosdemo controller``: run the kopf operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any


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

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("KOPF_RUN_NAMESPACE", "")
    asyncio.run(kopf.operator(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace))
    return 0
