"""Sub-commands of ``chaosdemo``. Each module registers its own parser and handler."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any


def register_all(sub: argparse._SubParsersAction[Any]) -> None:
    from controller.commands import controller, coverage, demo, monitor, probe, report, tickets

    modules: list[Any] = [demo, tickets, report, coverage, controller, monitor, probe]
    # The sandbox and the emulator are for a workstation and the tests: the cluster image does
    # not carry them, and offers neither command.
    if importlib.util.find_spec("controller.sandbox") is not None:
        from controller.commands import sandbox

        modules.insert(1, sandbox)
    if importlib.util.find_spec("controller.emulator") is not None:
        from controller.commands import emulator

        modules.append(emulator)
    for module in modules:
        module.register(sub)
