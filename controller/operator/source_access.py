"""How a drill reaches each Prometheus and Alertmanager source: the TLS and credentials of the
Secrets the source names (in the target namespace), or the controller's own for the URL the
controller was configured with. The controller's credentials never go to a URL a spec chose.

Preflight asks each server once with them, so a wrong CA, a refused client certificate or
refused credentials stop the drill before anything is touched, naming the source."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from controller.alerting.alertmanager import AlertmanagerError
from controller.httpaccess import PLAIN, ServerAccess, access_from_data
from controller.operator.admission import normalize_url
from controller.operator.config import ConfiguredAccess, OperatorConfig
from controller.operator.deps import Deps
from controller.operator.model import DetectionSource
from controller.operator.pd_access import named_secret
from controller.operator.state import RunSnapshot
from controller.prom import PrometheusError, PrometheusUnauthorized, PrometheusUnavailable
from controller.tlsclient import TLSConfigError

SERVER_TYPES = ("prometheus", "alertmanager")


@dataclass(frozen=True)
class SourceRefusal:
    reason: str
    message: str


def controller_access(
    config: OperatorConfig, configured: ConfiguredAccess, source: DetectionSource
) -> ServerAccess:
    """The controller's configured credentials, for its configured URL of this source's kind only."""
    pair = {
        "prometheus": (config.prometheus_url, configured.prometheus),
        "alertmanager": (config.alertmanager_url, configured.alertmanager),
    }.get(source.type)
    if pair is None or not pair[0] or not source.url:
        return PLAIN
    url, access = pair
    return access if normalize_url(url) == normalize_url(source.url) else PLAIN


async def _secret_access(deps: Deps, namespace: str, name: str, field: str, *, fresh: bool) -> ServerAccess:
    """The access a Secret gives. ``fresh``: read again (each drill's preflight does, so a
    certificate or token rotated since the last drill is the one used); otherwise the one this
    controller read last, if any (the rest of the drill)."""
    ref = f"{namespace}/{name}"
    kept = deps.source_secrets.get(ref)
    if kept is not None and not fresh:
        return kept
    data = await named_secret(deps.kube, ref, field)
    # Loading a client key touches the disk (a private temporary directory): off the event loop.
    access = await asyncio.to_thread(access_from_data, f"secret {ref}", data)
    deps.source_secrets[ref] = access
    return access


async def access_for(
    deps: Deps, run: RunSnapshot, source: DetectionSource, *, fresh: bool = False
) -> ServerAccess:
    """The TLS and credentials this source is reached with; TLSConfigError names what is wrong.
    ``fresh``: its Secrets read again rather than as this controller last read them."""
    access = controller_access(deps.config, deps.configured, source)
    ns = run.target_namespace
    if source.tls_secret_name:
        tls = await _secret_access(
            deps, ns, source.tls_secret_name, f"{source.label}.tlsSecretName", fresh=fresh
        )
        if tls.tls is None:
            raise TLSConfigError(
                "TLSSecretInvalid", f"secret {ns}/{source.tls_secret_name} ({source.label}) has no ca.crt"
            )
        access = access.merged(ServerAccess(tls=tls.tls))
    if source.auth_secret_name:
        auth = await _secret_access(
            deps, ns, source.auth_secret_name, f"{source.label}.authSecretName", fresh=fresh
        )
        if auth.auth is None:
            raise TLSConfigError(
                "AuthSecretInvalid",
                f"secret {ns}/{source.auth_secret_name} ({source.label}) has neither token nor username and password",
            )
        access = access.merged(ServerAccess(auth=auth.auth))
    return access


async def reach(deps: Deps, run: RunSnapshot, sources: list[DetectionSource]) -> dict[str, ServerAccess]:
    """Every server source's access, by label. Preflight proved each loads; one whose Secret
    went since (and a controller restarted meanwhile) is asked without it, and its refusal
    shows in the source's status."""
    out: dict[str, ServerAccess] = {}
    for source in sources:
        if source.type in SERVER_TYPES and source.url:
            try:
                out[source.label] = await access_for(deps, run, source)
            except TLSConfigError:
                continue
    return out


async def check_sources(deps: Deps, run: RunSnapshot, sources: list[DetectionSource]) -> SourceRefusal | None:
    """Each Prometheus and Alertmanager source asked once, as the drill will ask it. A Secret
    that cannot be used, a failed handshake or refused credentials refuse the drill; a server
    that does not answer at all is left to the detection window (it may be restarting)."""
    for source in sources:
        if source.type not in SERVER_TYPES or not source.url:
            continue
        where = f"detection source {source.label} ({source.url})"
        try:
            access = await access_for(deps, run, source, fresh=True)
        except TLSConfigError as exc:
            return SourceRefusal(exc.reason, f"{where}: {exc}")
        try:
            if source.type == "prometheus":
                await deps.alerting.prom(source.url, access).check()
            else:
                await deps.alerting.am(source.url, access).check()
        except PrometheusUnavailable as exc:
            if exc.tls_problem:
                return SourceRefusal("SourceTLSHandshakeFailed", f"{where}: {exc.tls_problem}")
        except PrometheusUnauthorized as exc:
            return SourceRefusal("SourceUnauthorized", f"{where}: {exc}")
        except PrometheusError:
            pass  # answered, but not as expected: the detection window will say what it sees
        except AlertmanagerError as exc:
            if exc.tls_problem:
                return SourceRefusal("SourceTLSHandshakeFailed", f"{where}: {exc.tls_problem}")
            if exc.refused:
                return SourceRefusal("SourceUnauthorized", f"{where}: {exc}")
    return None
