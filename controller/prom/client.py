"""Instant and range queries against Prometheus' HTTP API, returning typed results."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import httpx

from controller.httpaccess import PLAIN, ServerAccess, Unanswered, get
from controller.pd.formats import parse_duration


class PrometheusError(Exception):
    """Prometheus answered with an error (bad PromQL, timeout inside Prometheus, ...)."""


class PrometheusUnavailable(PrometheusError):
    """No answer: unreachable, or a TLS handshake that failed (``tls_problem`` says how)."""

    def __init__(self, message: str, tls_problem: str | None = None) -> None:
        super().__init__(message)
        self.tls_problem = tls_problem


class PrometheusUnauthorized(PrometheusError):
    """Prometheus (or the proxy before it) refused the credentials: 401 or 403."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]

    def values(self) -> list[float]:
        return [v for _, v in self.points if not math.isnan(v)]


class PrometheusClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 3.0,
        client: httpx.AsyncClient | None = None,
        access: ServerAccess = PLAIN,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access = access
        self._client = client or access.client(timeout)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        answer = await get(
            self._client, f"Prometheus at {self.base_url}", f"{self.base_url}{path}", params, self.access
        )
        if isinstance(answer, Unanswered):
            if answer.refused:
                raise PrometheusUnauthorized(answer.message)
            raise PrometheusUnavailable(answer.message, tls_problem=answer.tls_problem)
        response = answer
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PrometheusError(
                f"non-JSON answer ({response.status_code}): {response.text[:200]!r}"
            ) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", body) if isinstance(body, dict) else body
            raise PrometheusError(f"query failed ({response.status_code}): {error}")
        return body["data"]

    async def check(self) -> None:
        """One authenticated request (Prometheus' build info): raises what any query would."""
        await self._get("/api/v1/status/buildinfo", {})

    async def query(self, promql: str, at: float | None = None) -> list[Sample]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        data = await self._get("/api/v1/query", params)
        try:
            if data.get("resultType") == "scalar":
                ts, value = data["result"]
                return [Sample({}, float(ts), float(value))]
            return [
                Sample(dict(r["metric"]), float(r["value"][0]), float(r["value"][1])) for r in data["result"]
            ]
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"unexpected result shape for {promql!r}") from exc

    async def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        data = await self._get(
            "/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": max(step, 0.001)}
        )
        try:
            return [
                Series(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"unexpected range result shape for {promql!r}") from exc

    async def raw_samples(self, selector: str, start: float, end: float) -> list[Series]:
        """Every stored sample of ``selector`` in (start, end], with its own timestamp: a range
        vector selector evaluated at ``end`` (no step, so nothing is interpolated)."""
        window = max(1, int(end - start + 0.999))
        data = await self._get("/api/v1/query", {"query": f"{selector}[{window}s]", "time": end})
        try:
            return [
                Series(r["metric"], [(float(t), float(v)) for t, v in r["values"]])
                for r in data.get("result", [])
            ]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PrometheusError(f"unexpected matrix shape for {selector!r}") from exc

    async def scrape_interval(self, job: str) -> float | None:
        """The scrape interval of ``job``'s active targets (``/api/v1/targets``), in seconds."""
        data = await self._get("/api/v1/targets", {"state": "active"})
        targets = data.get("activeTargets") if isinstance(data, dict) else None
        for target in targets or []:
            if (target.get("labels") or {}).get("job") == job and target.get("scrapeInterval"):
                return parse_duration(str(target["scrapeInterval"]))
        return None

    async def alerts(self) -> list[dict[str, Any]]:
        """``/api/v1/alerts``: the alerts pending or firing now, with ``activeAt``."""
        data = await self._get("/api/v1/alerts", {})
        alerts = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(alerts, list):
            raise PrometheusError("unexpected shape of /api/v1/alerts")
        return alerts

    async def alerting_rules(self) -> list[dict[str, Any]]:
        """``/api/v1/rules?type=alert``: every alerting rule with its group's ``interval``."""
        data = await self._get("/api/v1/rules", {"type": "alert"})
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            raise PrometheusError("unexpected shape of /api/v1/rules")
        return [
            {**rule, "groupInterval": group.get("interval")}
            for group in groups
            for rule in group.get("rules", [])
        ]
