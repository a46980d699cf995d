"""The PD client a run uses: with the TLS material of its ``target.tls`` Secret (read once, then
kept by the Secret's name; a controller restarted mid-run reads it again), the controller's own
(CHAOSDEMO_PD_CREDENTIALS_DIR) for its configured PD, else plain."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.admission import normalize_url
from controller.operator.deps import Deps
from controller.operator.kube import Kube
from controller.operator.state import RunSnapshot
from controller.pd import PDClient
from controller.tlsclient import ClientTLS, TLSConfigError, from_secret_data


async def named_secret(kube: Kube, ref: str, field: str) -> dict[str, bytes]:
    """The data of the Secret ``namespace/name`` a spec's ``field`` names; TLSConfigError when it
    is missing or the controller may not read it."""
    namespace, _, name = ref.partition("/")
    try:
        data = await kube.secret_data(namespace, name)
    except ApiException as exc:
        if exc.status == 403:
            raise TLSConfigError(
                "TLSSecretForbidden", f"the controller may not read secret {ref} ({field})"
            ) from exc
        raise
    if data is None:
        raise TLSConfigError("TLSSecretNotFound", f"secret {ref} ({field}) does not exist")
    return data


async def load_target_tls(kube: Kube, ref: str) -> ClientTLS:
    """The client TLS of the Secret ``namespace/name``; TLSConfigError says what is wrong."""
    data = await named_secret(kube, ref, "target.tls.secretName")
    # Loading a key touches the disk (a private temporary directory): off the event loop.
    return await asyncio.to_thread(from_secret_data, f"secret {ref}", data)


async def pd_for(deps: Deps, run: RunSnapshot) -> PDClient:
    if not run.tls_secret:
        # The controller's own PD credentials go to its configured PD only.
        configured = normalize_url(run.pd_address) == normalize_url(deps.config.pd_address)
        return deps.pd(run.pd_address, deps.configured.pd.tls if configured else None)
    tls = deps.pd_tls.get(run.tls_secret)
    if tls is None:
        tls = deps.pd_tls[run.tls_secret] = await load_target_tls(deps.kube, run.tls_secret)
    return deps.pd(run.pd_address, tls)
