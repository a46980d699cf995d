"""Is the victim back? Recreate a bare pod if needed. Shared by recovery, abort and the finalizer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controller.operator.kube import Kube
from controller.operator.preflight import pod_ready
from controller.pd import PDClient, PDError
from controller.pd.models import pod_of_address

# Fields the API server owns: a manifest saved for re-creation must not carry them.
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def saved_manifest(api_client: Any, pod: Any) -> str | None:
    """The pod as JSON for re-creation, only for a bare pod (nothing would bring it back)."""
    if pod.metadata.owner_references:
        return None
    data = api_client.sanitize_for_serialization(pod)
    data.pop("status", None)
    for key in _SERVER_FIELDS:
        data.get("metadata", {}).pop(key, None)
    data.get("spec", {}).pop("nodeName", None)  # let the scheduler place it again
    return json.dumps(data, sort_keys=True)


@dataclass
class RestoreState:
    pod_ready: bool
    replaced: bool  # the pod now running under the victim's name is a new one
    store_up: bool
    restarted: bool  # the store has a start time after the kill
    message: str

    @property
    def done(self) -> bool:
        return self.pod_ready and self.store_up


async def check(
    kube: Kube, pd: PDClient, victim: dict[str, Any], *, injected_at: float | None
) -> RestoreState:
    namespace, name = victim["namespace"], victim["pod"]
    pod = await kube.get_pod(namespace, name)
    if pod is None and victim.get("manifest"):
        await kube.create_pod(namespace, json.loads(victim["manifest"]))
        return RestoreState(False, False, False, False, f"recreated bare pod {name} from its saved manifest")
    ready = pod is not None and pod_ready(pod)
    replaced = pod is not None and pod.metadata.uid != victim.get("uid")
    try:
        stores = await pd.stores()
    except PDError as exc:
        return RestoreState(ready, replaced, False, False, f"pod ready={ready}; PD unavailable: {exc}")
    store = next((s for s in stores if pod_of_address(s.store.address) == (name, namespace)), None)
    store_up = store is not None and store.store.state_name == "Up"
    restarted = bool(store and injected_at is not None and store.store.start_timestamp >= int(injected_at))
    state = store.store.state_name if store else "missing"
    return RestoreState(
        ready, replaced, store_up, restarted, f"pod {name} {'Ready' if ready else 'not Ready'}; store {state}"
    )
