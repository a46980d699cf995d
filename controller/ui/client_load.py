"""The demo's client load in the sandbox, from real clients in subprocesses of their own (they
need the sandbox's stand-in for cluster DNS preloaded): go-ycsb (YCSB with TiKV's Go client), or,
without it, TiKV's own Python client (``chaosdemo probe``) reading one key per region. Live
figures come from the client's own output: what an application would have met, not what a
server counted."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from dataclasses import dataclass
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
            f"clients: TiKV's own client, [bold]{len(recent) / WINDOW_SECONDS:,.0f}[/] requests/s · "
            f"[{style}]failed or stalled {bad / len(recent):.1%}[/] · p99 {p99 * 1000:,.0f} ms"
        )


# go-ycsb prints, every --interval seconds, one cumulative line per operation (and its _ERROR
# twin when some failed): "READ   - Takes(s): 10.0, Count: 1200, OPS: 120.0, ..., 99th(us): 1577, ..."
YCSB_LINE = re.compile(
    r"^(?P<op>[A-Z_]+)\s+- Takes\(s\): (?P<takes>[\d.]+), Count: (?P<count>\d+), .*99th\(us\): (?P<p99>\d+),"
)


@dataclass(frozen=True)
class YcsbReport:
    """One of go-ycsb's periodic reports: per operation, (count so far, p99 so far in µs)."""

    at: float
    ops: dict[str, tuple[int, int]]


class YcsbLoad:
    """go-ycsb (YCSB with TiKV's Go client, raw mode) as the demo's load: workload A (half reads,
    half updates) on 1,000 records it loads first, at a target rate; its figures from its own
    output. A second real client, written by neither this project nor TiKV's Rust client."""

    RECORDS = 1000

    def __init__(self, binary: Path, pd_url: str, env: dict[str, str], rate: float) -> None:
        self.binary = binary
        self.workload = binary.with_name("workloada")
        self.pd_address = pd_url.split("://", 1)[-1].rstrip("/")
        # Go resolves names itself unless told to use libc (where the sandbox's resolver sits).
        self.env = {**env, "GODEBUG": "netdns=cgo"}
        self.rate = rate
        self.reports: list[YcsbReport] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def _argv(self, phase: str, *extra: str) -> list[str]:
        return [
            *(str(self.binary), phase, "tikv", "-P", str(self.workload)),
            *("-p", f"tikv.pd={self.pd_address}", "-p", "tikv.type=raw", "-p", f"recordcount={self.RECORDS}"),
            *extra,
        ]

    async def start(self) -> None:
        load = await asyncio.create_subprocess_exec(
            *self._argv("load", "-p", "threadcount=4"),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(load.wait(), 60)
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv("run", "-p", "operationcount=1000000000", "-p", "threadcount=4"),
            *("--target", str(int(self.rate)), "--interval", "1"),
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read())
        # Running before the fault: two reports (one second apart) give the first live figures.
        for _ in range(150):
            if len(self.reports) >= 2 or self._reader.done():
                break
            await asyncio.sleep(0.1)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        ops: dict[str, tuple[int, int]] = {}
        async for raw in self._proc.stdout:
            match = YCSB_LINE.match(raw.decode(errors="replace"))
            if match is None:
                continue
            ops[match["op"]] = (int(match["count"]), int(match["p99"]))
            if match["op"] == "TOTAL":  # the last line of a report
                self.reports.append(YcsbReport(time.time(), dict(ops)))
                ops = {}

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 5)
        if self._reader is not None:
            self._reader.cancel()

    async def figures(self) -> Text:
        """Operations per second and errors since go-ycsb's previous report; its p99 so far."""
        if len(self.reports) < 2:
            return Text.from_markup("[yellow]clients: go-ycsb starting…[/]")
        prev, last = self.reports[-2], self.reports[-1]

        def delta(op: str) -> int:
            return last.ops.get(op, (0, 0))[0] - prev.ops.get(op, (0, 0))[0]

        seconds = max(last.at - prev.at, 1e-3)
        errors = sum(delta(op) for op in last.ops if op.endswith("_ERROR"))
        total = delta("TOTAL")
        style = "bold red" if errors else "green"
        return Text.from_markup(
            f"clients: go-ycsb (workload A), [bold]{total / seconds:,.0f}[/] requests/s · "
            f"[{style}]errors {errors / max(total, 1):.1%}[/] · p99 {last.ops['TOTAL'][1] / 1000:,.1f} ms (so far)"
        )
