"""``chaosdemo controller``: run the kopf operator."""

from __future__ import annotations

import argparse
import asyncio
import os
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
    p.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("CHAOSDEMO_HEALTH_PORT", "0")),
        help="serve kopf's liveness endpoint (/healthz, also the readiness probe) on this port",
    )
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import kopf

    import controller.handlers  # noqa: F401  (registers the handlers)

    configure(args.verbose)
    # kopf serves /healthz only once its startup handlers are done (the ticket store open, the
    # API client ready) and answers from the probe handlers: it doubles as readiness.
    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=liveness,
        )
    )
    return 0
