"""The demo's client load in the sandbox: TiKV's own client (``chaosdemo probe``) reading one key
per region through PD, a few hundred reads a second, in a subprocess of its own (it needs the
sandbox's stand-in for cluster DNS preloaded). Its live figures come from its own record, one
JSON line per request: what an application would have met, not what a server counted."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from rich.text import Text

from controller.client_probe.model import Outcome, ProbeRecord

WINDOW_SECONDS = 2.0


class ClientLoad:
    def __init__(self, pd_url: str, env: dict[str, str], out: Path, rate: float) -> None:
        self.pd_address = pd_url.split("://", 1)[-1].rstrip("/")
        self.env = env
        self.out = out
        self.rate = rate
        self._proc: asyncio.subprocess.Process | None = None
        self._records: list[ProbeRecord] = []
        self._read_to = 0

    async def start(self) -> None:
        self.out.unlink(missing_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "controller.cli", "probe", "--pd", self.pd_address),
            *("--rate", str(self.rate), "--deadline", "1", "--out", str(self.out)),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5)

    async def _read_new(self) -> None:
        def read() -> str:
            if not self.out.exists():
                return ""
            with self.out.open() as f:
                f.seek(self._read_to)
                text = f.read()
                # Only whole lines: the writer may be mid-line.
                whole = text[: text.rfind("\n") + 1]
                self._read_to += len(whole)
                return whole

        for line in (await asyncio.to_thread(read)).splitlines():
            self._records.append(ProbeRecord.model_validate_json(line))
        cutoff = time.time() - 60
        self._records = [r for r in self._records if r.ended >= cutoff]

    async def figures(self) -> Text:
        """One line: reads per second that were answered, the share that failed or stalled, p99,
        over the last two seconds; red while reads fail."""
        await self._read_new()
        now = time.time()
        recent = [r for r in self._records if r.ended >= now - WINDOW_SECONDS]
        if not recent:
            return Text.from_markup("[yellow]clients: TiKV's client starting…[/]")
        bad = sum(1 for r in recent if r.outcome != Outcome.OK)
        latencies = sorted(r.seconds for r in recent)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        style = "bold red" if bad else "green"
        return Text.from_markup(
            f"clients (TiKV's own client): [bold]{len(recent) / WINDOW_SECONDS:,.0f}[/] requests/s · "
            f"[{style}]failed or stalled {bad / len(recent):.1%}[/] · p99 {p99 * 1000:,.0f} ms"
        )
