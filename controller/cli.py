"""The ``chaosdemo`` command: one entry point, one sub-command per component."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosdemo",
        description="Chaos drills for TiKV on Kubernetes: kill, detect, diagnose, recover, report.",
        epilog="Start with `chaosdemo sandbox up`, then `chaosdemo demo`. Each sub-command has --help.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from controller.commands import register_all

    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
