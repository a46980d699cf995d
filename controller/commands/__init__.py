"""Sub-commands of ``chaosdemo``. Each module registers its own parser and handler."""

from __future__ import annotations

import argparse
from typing import Any


def register_all(sub: argparse._SubParsersAction[Any]) -> None:
    from controller.commands import controller, emulator, monitor

    for module in (controller, emulator, monitor):
        module.register(sub)
