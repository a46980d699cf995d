"""Async client for Alertmanager's API v2 (``/api/v2/alerts``)."""

from __future__ import annotations

import json
from typing import Any

import httpx


class AlertmanagerError(Exception):
    pass


class AlertmanagerClient:
    def __init__(self, base_url: str, *, timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds (active, silenced or inhibited), with ``startsAt``."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        try:
            response = await self._client.get(f"{self.base_url}/api/v2/alerts", params=params)
        except httpx.TransportError as exc:
            raise AlertmanagerError(f"Alertmanager at {self.base_url} is unreachable: {exc!r}") from exc
        if not response.is_success:
            raise AlertmanagerError(f"Alertmanager answered {response.status_code}: {response.text[:200]!r}")
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AlertmanagerError(f"non-JSON answer from {self.base_url}/api/v2/alerts") from exc
        if not isinstance(body, list):
            raise AlertmanagerError("unexpected shape of /api/v2/alerts")
        return body
