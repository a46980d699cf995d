"""Sub-commands of ``chaosdemo``. Each module registers its own parser and handler."""

from __future__ import annotations

import argparse
from typing import Any


def register_all(sub: argparse._SubParsersAction[Any]) -> None:
    from controller.commands import controller, demo, emulator, monitor, report, sandbox, tickets

    for module in (demo, sandbox, tickets, report, controller, monitor, emulator):
        module.register(sub)
