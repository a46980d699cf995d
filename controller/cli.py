"""The ``chaosdemo`` command: one entry point, one sub-command per component."""

from __future__ import annotations

import argparse
import logging
import os
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


def entry() -> None:
    """The command's process entry (console script and ``python -m``): run, then leave.

    A process that loaded TiKV's client leaves without Python's finalisation: the client's Rust
    runtime keeps threads that may call into Python while the interpreter finalises, which aborts
    the process ("PyGILState_Release: thread state ... must be current", seen in CI). By then
    everything the command owes is written: flush it and go."""
    code = main()
    if "tikv_client" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
