"""Headless Chromium (Debian's package) driven over the DevTools protocol: open a page, collect
script errors, evaluate expressions, take a screenshot. No Playwright or Selenium needed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium tries Google's services, which this closed network refuses.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1200,1400",
)


def chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if not found:
        raise AssertionError(
            "chromium is missing: `apt-get install -y chromium` (scripts/setup.sh installs it); "
            "the HTML report is tested in a real browser"
        )
    return found


@dataclass
class Page:
    ws: aiohttp.ClientWebSocketResponse
    errors: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _events: list[dict[str, Any]] = field(default_factory=list)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive(timeout=30)).data)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            self._note(msg)

    def _note(self, msg: dict[str, Any]) -> None:
        self._events.append(msg)
        method, params = msg.get("method"), msg.get("params") or {}
        if method == "Runtime.exceptionThrown":
            self.errors.append(str(params.get("exceptionDetails", {}).get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(str(params.get("args")))
        elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
            self.errors.append(str(params["entry"].get("text")))

    async def open(self, url: str) -> None:
        for domain in ("Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable")
        await self.call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._note(json.loads((await self.ws.receive(timeout=30)).data))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the browser and every helper it started, and wait until none is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    for _ in range(200):  # helpers reparented elsewhere die on SIGKILL; wait until they are gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@contextlib.asynccontextmanager
async def browser_page() -> Any:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group: Chromium's helpers (renderer, GPU, network, crashpad) outlive
            # a killed browser process and keep writing the profile, which then cannot be removed.
            start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            endpoint = None
            for _ in range(200):
                line = await asyncio.to_thread(proc.stderr.readline)
                if match := re.search(r"DevTools listening on (ws://\S+)", line):
                    endpoint = match.group(1)
                    break
            assert endpoint, "chromium did not start its DevTools endpoint"
            port = re.search(r":(\d+)/", endpoint).group(1)  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as session:
                targets = await (await session.get(f"http://127.0.0.1:{port}/json/list")).json()
                page = next(t for t in targets if t.get("type") == "page")
                async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 << 20) as ws:
                    yield Page(ws)
        finally:
            _kill_group(proc)
