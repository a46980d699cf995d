"""Async client for PD's HTTP API, with PD's error strings turned into exceptions."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import urllib.parse
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, TypeVar

import httpx
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError

from controller.pd.models import HealthMember, PDConfig, RegionCheck, StoreInfo, StoresResponse
from controller.tlsclient import ClientTLS, tls_problem

API = "/pd/api/v1"
REGION_CHECK_KINDS = ("down-peer", "pending-peer", "miss-peer", "offline-peer", "extra-peer", "learner-peer")
_PD_ERROR_RE = re.compile(r"^\[(?P<code>PD:[^\]]+)\](?P<message>.*)$", re.DOTALL)
M = TypeVar("M", bound=BaseModel)


# What the PD clients of this process fetched, by endpoint (ids dropped): the cost of looking
# at a cluster, which must not grow with its size on every step.
RESPONSE_BYTES = Counter(
    "chaosdemo_pd_response_bytes_total", "Bytes of PD's answers, by endpoint", ["endpoint"]
)
REQUESTS = Counter("chaosdemo_pd_requests_total", "Requests answered by PD, by endpoint", ["endpoint"])


def _count(path: str, content: bytes) -> None:
    endpoint = _endpoint(path)
    REQUESTS.labels(endpoint).inc()
    RESPONSE_BYTES.labels(endpoint).inc(len(content))


def _endpoint(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path.split("?", 1)[0])


class PDError(Exception):
    """PD answered with an error. ``code`` is PD's error code, e.g. ``PD:core:ErrStoreNotFound``."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"PD {status}{f' {code}' if code else ''}: {message}")


class PDStoreNotFound(PDError):
    pass


class PDUnavailable(PDError):
    """PD could not be reached (connection refused, timeout, DNS)."""

    def __init__(self, url: str, reason: str, tls_problem: str | None = None) -> None:
        super().__init__(0, f"PD at {url} is unreachable: {tls_problem or reason}")
        # A failed TLS handshake (an untrusted certificate, a refused client certificate): a
        # configuration error, not an outage to wait out.
        self.tls_problem = tls_problem


class PDBadResponse(PDError):
    """PD answered, but not with what PD's API returns (not JSON, or the wrong shape)."""


# What "PD out of reach" looks like: httpx's transport errors, and a TLS alert read after the
# handshake (a refused client certificate, in TLS 1.3), which reaches us as ssl.SSLError.
UNREACHABLE = (httpx.TransportError, ssl.SSLError)


class PDClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 3.0,
        client: httpx.AsyncClient | None = None,
        tls: ClientTLS | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if "://" not in self.base_url:
            self.base_url = ("https://" if tls else "http://") + self.base_url
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=tls.context if tls else True)
        self._owns_client = client is None

    async def __aenter__(self) -> PDClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{API}{path}"
        try:
            response = await self._client.request(method, url, **kwargs)
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            snippet = response.content[:200].decode("utf-8", errors="replace")
            if response.is_success:
                raise PDBadResponse(response.status_code, f"non-JSON body from {path}: {snippet!r}") from exc
            body = snippet
        _count(path, response.content)
        if response.is_success:
            return body
        self._raise_for(response.status_code, body if isinstance(body, str) else json.dumps(body)[:300])

    def _unreachable(self, exc: BaseException) -> PDUnavailable:
        return PDUnavailable(self.base_url, f"{type(exc).__name__}: {exc}", tls_problem(exc))

    @staticmethod
    def _raise_for(status: int, text: str) -> NoReturn:
        match = _PD_ERROR_RE.match(text)
        code, message = (match.group("code"), match.group("message")) if match else ("", text)
        if code.endswith("ErrStoreNotFound"):
            raise PDStoreNotFound(status, message, code)
        raise PDError(status, message, code)

    @staticmethod
    def _parse(model: type[M], body: Any, what: str) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise PDBadResponse(200, f"unexpected shape of {what}: {exc.errors()[0]['msg']}") from exc

    async def stores(self) -> list[StoreInfo]:
        return self._parse(StoresResponse, await self._request("GET", "/stores"), "/stores").stores

    async def stores_in_state(self, *states: str) -> list[StoreInfo]:
        params = [("state", s) for s in states]
        body = await self._request("GET", "/stores/check", params=params)
        return self._parse(StoresResponse, body, "/stores/check").stores

    async def store(self, store_id: int) -> StoreInfo:
        return self._parse(StoreInfo, await self._request("GET", f"/store/{store_id}"), "/store")

    async def health(self) -> list[HealthMember]:
        body = await self._request("GET", "/health")
        try:
            return TypeAdapter(list[HealthMember]).validate_python(body)
        except ValidationError as exc:
            raise PDBadResponse(200, f"unexpected shape of /health: {exc.errors()[0]['msg']}") from exc

    async def members(self) -> dict[str, Any]:
        body = await self._request("GET", "/members")
        if not isinstance(body, dict) or "members" not in body:
            raise PDBadResponse(200, "unexpected shape of /members")
        return body

    async def leader(self) -> str | None:
        """The current leader's member name, from ``/members`` (None while there is none)."""
        leader = (await self.members()).get("leader")
        return str(leader["name"]) if isinstance(leader, dict) and leader.get("name") else None

    async def config(self) -> PDConfig:
        return self._parse(PDConfig, await self._request("GET", "/config"), "/config")

    async def set_max_store_down_time(self, duration: str) -> None:
        await self._request("POST", "/config", json={"max-store-down-time": duration})

    async def region_check(self, kind: str) -> RegionCheck:
        if kind not in REGION_CHECK_KINDS:
            raise ValueError(f"unknown region check {kind!r}; one of {', '.join(REGION_CHECK_KINDS)}")
        return self._parse(RegionCheck, await self._request("GET", f"/regions/check/{kind}"), kind)

    async def regions(self) -> RegionCheck:
        """``/regions``: every region with its peers (roles), leader, down and pending peers.
        Same shape as a region check's answer. Real clusters hold 10^5-10^6 regions: ask for it
        once per drill at most (preflight's quorum check), never per step."""
        return await self._regions("/regions")

    async def scan_regions(self, start: bytes = b"", limit: int = 16) -> RegionCheck:
        """``/regions/key``: the regions from the one holding ``start`` on, at most ``limit``."""
        query = urllib.parse.urlencode({"key": start.decode("latin-1"), "limit": limit})
        return await self._regions(f"/regions/key?{query}")

    async def regions_of_store(self, store_id: int) -> RegionCheck:
        """``/regions/store/{id}``: the regions with a peer on that store."""
        return await self._regions(f"/regions/store/{store_id}")

    async def unhealthy_regions(self) -> RegionCheck:
        """The regions with a down or a pending peer (PD's two region checks, one answer): small
        in a healthy cluster, whatever its size."""
        down, pending = await asyncio.gather(
            self._regions("/regions/check/down-peer"), self._regions("/regions/check/pending-peer")
        )
        by_id = {r.id: r for r in [*down.regions, *pending.regions]}
        return RegionCheck(count=len(by_id), regions=list(by_id.values()))

    async def _regions(self, path: str) -> RegionCheck:
        """A region list, decoded and validated in a worker thread: a big cluster's answer takes
        seconds to parse, which the event loop must not wait out."""
        url = f"{self.base_url}{API}{path}"
        try:
            response = await self._client.get(url)
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        _count(path, response.content)
        if not response.is_success:
            self._raise_for(response.status_code, response.content[:300].decode("utf-8", errors="replace"))
        return await asyncio.to_thread(self._decode_regions, response.content, path)

    @classmethod
    def _decode_regions(cls, content: bytes, path: str) -> RegionCheck:
        try:
            body = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PDBadResponse(200, f"non-JSON body from {path}: {content[:200]!r}") from exc
        return cls._parse(RegionCheck, body, path)

    async def server_time(self) -> float:
        """PD's own clock, from the HTTP Date header of its answer (Go's server sets it on every
        response): whole seconds, truncated."""
        url = f"{self.base_url}{API}/cluster"
        try:
            response = await self._client.get(url)
        except UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        date = response.headers.get("date")
        try:
            return parsedate_to_datetime(date).timestamp() if date else float("nan")
        except (TypeError, ValueError):
            return float("nan")

    async def cluster_id(self) -> int:
        """``/cluster``'s ``id``: the one identity of a PD cluster, whatever its address's spelling."""
        body = await self._request("GET", "/cluster")
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise PDBadResponse(200, "unexpected shape of /cluster")
        return int(body["id"])


def cluster_name(cluster_id: int) -> str:
    """The name tickets carry for a PD cluster: its id, so two spellings of one address agree."""
    return f"pd-{cluster_id}"
