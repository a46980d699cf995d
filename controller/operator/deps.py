"""What every part of the drill engine is handed: the API server, the ticket store, the
configuration, the clients kept per address and what is remembered per drill between steps."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from controller.diagnosis.schema import DiagnosisOutput
from controller.httpaccess import ServerAccess
from controller.operator import admission, probing
from controller.operator.clients import ClientCache
from controller.operator.config import ConfiguredAccess, OperatorConfig
from controller.operator.kube import Kube
from controller.operator.sources import AlertingClients
from controller.pd import PDClient
from controller.prom import PrometheusClient
from controller.tickets import TicketDB
from controller.tlsclient import ClientTLS

PD_CLIENTS_KEPT = 32


@dataclass
class Retry:
    first_failure: float
    attempts: int = 0


@dataclass
class Diagnosed:
    output: DiagnosisOutput
    diagnoser: str
    model: str | None
    fallback_reason: str | None
    blind: bool
    prompt_version: str | None


@dataclass
class Deps:
    kube: Kube
    db: TicketDB
    config: OperatorConfig
    prom: PrometheusClient | None = None
    _pd: ClientCache[PDClient] = field(init=False)
    alerting: AlertingClients = field(default_factory=AlertingClients)
    # One step or teardown at a time per drill (by uid).
    guards: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Drills that are only waiting (for a lock, for the cluster, for a retry) are looked at again
    # no sooner than this (by uid): hundreds of queued drills must not poll every tick.
    not_before: dict[str, float] = field(default_factory=dict)
    retries: dict[str, Retry] = field(default_factory=dict)
    diagnoses: dict[str, asyncio.Task[Diagnosed]] = field(default_factory=dict)
    # When each recovery moment was last seen not to hold yet (by uid): its lower bound.
    recovery_bounds: dict[str, dict[str, float]] = field(default_factory=dict)
    # When the detection sources were last asked (by uid, monotonic): at most once a second.
    sources_asked: dict[str, float] = field(default_factory=dict)
    # The client prober of each drill that asked for one (by uid), or why it could not start.
    probes: dict[str, probing.RunningProbe] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    # TLS towards PD, loaded once per target.tls Secret ("namespace/name") and kept by identity.
    pd_tls: dict[str, ClientTLS] = field(default_factory=dict)
    # The controller's TLS and credentials for its configured PD, Prometheus and Alertmanager
    # (CHAOSDEMO_*_CREDENTIALS_DIR), and those of the Secrets sources name ("namespace/name").
    configured: ConfiguredAccess = field(default_factory=ConfiguredAccess)
    source_secrets: dict[str, ServerAccess] = field(default_factory=dict)
    _tls_by_identity: dict[str, ClientTLS] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._pd = ClientCache(self._build_pd, limit=PD_CLIENTS_KEPT)

    def _build_pd(self, key: str) -> PDClient:
        address, _, identity = key.partition("#")
        return PDClient(address, tls=self._tls_by_identity[identity] if identity else None)

    def guard(self, uid: str) -> asyncio.Lock:
        return self.guards.setdefault(uid, asyncio.Lock())

    def backoff(self, uid: str, seconds: float) -> None:
        self.not_before[uid] = time.monotonic() + seconds

    def pd(self, address: str, tls: ClientTLS | None = None) -> PDClient:
        """The PD client for an address (and TLS material): one per pair, kept while used."""
        key = admission.normalize_url(address)
        if tls is not None:
            self._tls_by_identity[tls.identity] = tls
            key = f"{key}#{tls.identity}"
        return self._pd.get(key)

    def forget(self, uid: str) -> None:
        """A run ended: drop what was kept in memory for it."""
        self.retries.pop(uid, None)
        self.recovery_bounds.pop(uid, None)
        self.sources_asked.pop(uid, None)
        task = self.diagnoses.pop(uid, None)
        if task is not None and not task.done():
            task.cancel()
        probe = self.probes.pop(uid, None)
        if probe is not None:
            probing.cancel(probe)
        self.probe_errors.pop(uid, None)

    async def aclose(self) -> None:
        for uid in {*self.diagnoses, *self.probes}:
            self.forget(uid)
        await self._pd.aclose()
        await self.alerting.aclose()
