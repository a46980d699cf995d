"""A local HTTP server that speaks the Anthropic Messages API (POST /v1/messages).

The real ``anthropic`` SDK talks to it over HTTP (ANTHROPIC_BASE_URL), so the client's
retries, timeouts, headers and parsing are all exercised. It plays one scripted behaviour at a
time and records every request for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODES = (
    "good",
    "slow",
    "max_tokens",
    "overloaded",
    "timeout",
    "refusal",
    "bad_citation",
    "server_error",
    "not_json",
)


def good_diagnosis(evidence_ids: list[str], pod: str = "the pod") -> dict[str, Any]:
    return {
        "summary": f"TiKV pod {pod} was killed and restarted by its StatefulSet.",
        "root_cause": f"The TiKV process in {pod} stopped abruptly and came back with a new start time.",
        "root_cause_category": "tikv_pod_failure",
        "severity": "medium",
        "confidence": "high",
        "evidence": [
            {"id": i, "why": "shows the store going away and coming back"} for i in evidence_ids[:3]
        ],
        "recommended_actions": ["Check the pod's previous logs"],
        "open_questions": ["Was it deliberate?"],
    }


@dataclass
class MessagesAPIServer:
    mode: str = "good"
    delay_s: float = 5.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        record: dict[str, Any] = {
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body,
            "raw": json.dumps(body),
            "received_at": time.time(),
        }
        self.requests.append(record)
        try:
            return await self._answer(body)
        finally:
            record["answered_at"] = time.time()

    async def _answer(self, body: dict[str, Any]) -> web.Response:
        prompt = json.dumps(body.get("messages", []))
        # Two evidence items and the first derived fact: a model may cite either kind.
        ids = re.findall(r"\[(E\d+)\]", prompt)[:2] + re.findall(r"\[(F\d+)\]", prompt)[:1]
        pod = (re.findall(r"pod=([a-z0-9-]+)", prompt) or ["the pod"])[0]
        mode = self.mode
        if mode == "overloaded":
            return web.json_response(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529
            )
        if mode == "server_error":
            return web.json_response(
                {"type": "error", "error": {"type": "api_error", "message": "Internal"}}, status=500
            )
        if mode in ("timeout", "slow"):  # slow: a good answer, after delay_s
            await asyncio.sleep(self.delay_s)
        if mode == "not_json":
            return web.Response(text="<html>gateway</html>", status=502)
        text = json.dumps(good_diagnosis(ids, pod))
        stop = "end_turn"
        if mode == "max_tokens":
            text, stop = text[: len(text) // 3], "max_tokens"
        elif mode == "refusal":
            text, stop = "I can't help with that.", "refusal"
        elif mode == "bad_citation":
            data = good_diagnosis(ids, pod)
            data["evidence"] = [{"id": "E99", "why": "invented"}]
            text = json.dumps(data)
        return web.json_response(
            {
                "id": f"msg_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": len(prompt) // 4, "output_tokens": len(text) // 4},
            }
        )

    def start(self) -> MessagesAPIServer:
        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/messages", self._messages)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
