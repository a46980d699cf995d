"""TiKV's own Rust client (``tikv_client``) run against a sandbox cluster in a process of its
own: a coroutine body ``main(pd, *args)`` is given; what it prints comes back.

The process leaves by ``os._exit`` once it has printed: the client's Rust threads may call into
Python while the interpreter finalises, which aborts it (see ``controller.cli.entry``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from controller.client_probe.model import ProbeRecord
from controller.sandbox.tikv import TikvCluster
from tests.support.drills import patience

_PRELUDE = "import asyncio, json, os, sys\nfrom tikv_client.asynchronous import RawClient\n"
_EXIT = "\nasyncio.run(main(sys.argv[1], *sys.argv[2:]))\nsys.stdout.flush()\nos._exit(0)\n"


def client_env(cluster: TikvCluster) -> dict[str, str]:
    """This process's environment with the sandbox's names for the stores (and PD) resolvable."""
    return {**os.environ, **cluster.client_env()}


def run_client(cluster: TikvCluster, body: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _PRELUDE + body + _EXIT, cluster.pd_address, *args],
        env=client_env(cluster),
        capture_output=True,
        text=True,
        timeout=patience(60),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Prober:
    """``chaosdemo probe`` (TiKV's Rust client reading every region at a steady rate) in a process
    of its own, writing one record per read to ``out``."""

    def __init__(self, cluster: TikvCluster, out: Path, *, rate: int = 40, deadline: float = 0.5) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *("-m", "controller.cli", "probe", "--pd", cluster.pd_address),
                *("--rate", str(rate), "--deadline", str(deadline), "--out", str(out)),
            ],
            env=client_env(cluster),
            stderr=subprocess.PIPE,
            text=True,
        )

    def records(self) -> list[ProbeRecord]:
        if not self.out.exists():
            return []
        return [
            ProbeRecord.model_validate_json(line)
            for line in self.out.read_text().splitlines()
            if line.strip()
        ]

    def stop(self) -> list[ProbeRecord]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(patience(10))
        return self.records()
