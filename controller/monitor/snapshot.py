"""One observation of the cluster from every source the monitor has, taken concurrently.

A source that fails is recorded as failed, never raised: the monitor judges with what it has.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from controller.pd import HealthMember, PDClient, PDError, RegionCheck, StoreInfo
from controller.prom import PrometheusClient, PrometheusError

REGION_CHECKS = ("down-peer", "pending-peer", "miss-peer")


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    latency_ms: float


PROBE_CONFIRM_DELAY = 0.1  # seconds between a failed probe and its confirmation
PROBE_CONFIRMATIONS = 2  # a failure counts only if this many more probes fail too


@dataclass
class Snapshot:
    taken_at: float
    stores: list[StoreInfo] = field(default_factory=list)
    stores_fresh: bool = False  # False: PD failed and ``stores`` is the last list we had
    pd_error: str | None = None
    pd_health: list[HealthMember] | None = None
    pd_leader: str | None = None  # the leader /members names; None while there is none
    region_checks: dict[str, RegionCheck] = field(default_factory=dict)
    up: dict[str, float] | None = None  # Prometheus `up` by instance; None: Prometheus failed
    process_start: dict[str, float] | None = None
    prom_error: str | None = None
    probes: dict[str, ProbeResult] = field(default_factory=dict)  # by status address

    def sources_seeing_store(self, store_id: int | None) -> set[str]:
        """The sources that saw this store this cycle: PD with a fresh list that has it,
        Prometheus with a target for it, a probe of its status port."""
        store = next((s for s in self.stores if s.id == store_id), None)
        seeing: set[str] = set()
        if self.stores_fresh and store is not None:
            seeing.add("pd")
        if store is None:
            return seeing
        address = store.store.status_address
        if self.up is not None and address in self.up:
            seeing.add("prometheus")
        if address in self.probes:
            seeing.add("probe")
        return seeing


class Snapshotter:
    def __init__(
        self,
        pd: PDClient,
        prom: PrometheusClient | None,
        *,
        probe: bool = True,
        tikv_job: str = "tikv",
        probe_timeout: float = 1.0,
        probe_concurrency: int = 64,
    ) -> None:
        self.pd = pd
        self.prom = prom
        self.probe = probe
        self.tikv_job = tikv_job
        self._probe_client = httpx.AsyncClient(timeout=probe_timeout)
        self._probe_limit = asyncio.Semaphore(probe_concurrency)
        self._last_stores: list[StoreInfo] = []

    async def aclose(self) -> None:
        await self._probe_client.aclose()

    async def take(self) -> Snapshot:
        snap = Snapshot(taken_at=time.time())
        await asyncio.gather(self._from_pd(snap), self._from_prometheus(snap))
        if self.probe and snap.stores:
            await self._probe_stores(snap)
        return snap

    async def _from_pd(self, snap: Snapshot) -> None:
        try:
            stores_task = self.pd.stores()
            health_task = self.pd.health()
            checks_task = asyncio.gather(*(self.pd.region_check(k) for k in REGION_CHECKS))
            members_task = self.pd.members()
            stores, health, checks, members = await asyncio.gather(
                stores_task, health_task, checks_task, members_task
            )
        except PDError as exc:
            snap.pd_error = str(exc)
            snap.stores = list(self._last_stores)
            return
        snap.stores, snap.stores_fresh, snap.pd_health = stores, True, health
        leader = members.get("leader")
        snap.pd_leader = leader.get("name") if isinstance(leader, dict) else None
        snap.region_checks = dict(zip(REGION_CHECKS, checks, strict=True))
        self._last_stores = stores

    async def _from_prometheus(self, snap: Snapshot) -> None:
        if self.prom is None:
            snap.prom_error = "no Prometheus configured"
            return
        job = self.tikv_job
        try:
            up, starts = await asyncio.gather(
                self.prom.query(f'up{{job="{job}"}}'),
                self.prom.query(f'process_start_time_seconds{{job="{job}"}}'),
            )
        except PrometheusError as exc:
            snap.prom_error = str(exc)
            return
        snap.up = {s.labels.get("instance", ""): s.value for s in up}
        snap.process_start = {s.labels.get("instance", ""): s.value for s in starts}

    async def _probe_stores(self, snap: Snapshot) -> None:
        addresses = [s.store.status_address for s in snap.stores if s.store.status_address]
        results = await asyncio.gather(*(self._probe(a) for a in addresses))
        snap.probes = dict(zip(addresses, results, strict=True))

    async def _probe(self, status_address: str) -> ProbeResult:
        """A failed probe is confirmed by more probes shortly after: one lost packet or a GC pause
        must not page anyone (nor block every drill through the open-ticket guard). A dead store
        refuses them all at once, so detection loses only the pauses."""
        first = await self._probe_once(status_address)
        if first.ok:
            return first
        last = first
        for _ in range(PROBE_CONFIRMATIONS):
            await asyncio.sleep(PROBE_CONFIRM_DELAY)
            last = await self._probe_once(status_address)
            if last.ok:
                return ProbeResult(
                    True, f"{last.detail} (after a failed probe: {first.detail})", last.latency_ms
                )
        return last

    async def _probe_once(self, status_address: str) -> ProbeResult:
        async with self._probe_limit:
            started = time.perf_counter()
            try:
                response = await self._probe_client.get(f"http://{status_address}/status")
                ok = response.status_code == 200
                detail = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return ProbeResult(ok, detail, (time.perf_counter() - started) * 1000)
