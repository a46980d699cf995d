"""Async client for Alertmanager's API v2 (``/api/v2/alerts``)."""

from __future__ import annotations

import json
from typing import Any

from controller.httpaccess import PLAIN, ServerAccess, Unanswered, get


class AlertmanagerError(Exception):
    def __init__(self, message: str, *, tls_problem: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        # How a TLS handshake failed, when one did; refused: the credentials were (401/403).
        self.tls_problem = tls_problem
        self.refused = refused


class AlertmanagerClient:
    def __init__(self, base_url: str, *, timeout: float = 3.0, access: ServerAccess = PLAIN) -> None:
        self.base_url = base_url.rstrip("/")
        self.access = access
        self._client = access.client(timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        server = f"Alertmanager at {self.base_url}"
        answer = await get(self._client, server, f"{self.base_url}{path}", params, self.access)
        if isinstance(answer, Unanswered):
            raise AlertmanagerError(answer.message, tls_problem=answer.tls_problem, refused=answer.refused)
        response = answer
        if not response.is_success:
            raise AlertmanagerError(f"Alertmanager answered {response.status_code}: {response.text[:200]!r}")
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlertmanagerError(f"non-JSON answer from {self.base_url}{path}") from exc

    async def check(self) -> None:
        """One authenticated request (Alertmanager's status): raises what ``alerts`` would."""
        if not isinstance(await self._get("/api/v2/status", {}), dict):
            raise AlertmanagerError("unexpected shape of /api/v2/status")

    async def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds (active, silenced or inhibited), with ``startsAt``."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        body = await self._get("/api/v2/alerts", params)
        if not isinstance(body, list):
            raise AlertmanagerError("unexpected shape of /api/v2/alerts")
        return body
