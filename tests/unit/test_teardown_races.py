"""A deletion or an abort that arrives while a step runs: nothing is injected after it, and the
teardown decides from the live object, never from the body kopf handed it at deletion time.

The API server is a fake here on purpose: it makes the race certain (the request lands exactly
between the step's first read and its destructive call) and it enforces the resourceVersion
precondition the way the real one does (409 when the object changed since it was read)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.config import OperatorConfig
from controller.operator.drill import Deps, advance, finalize
from controller.operator.model import FINALIZER
from controller.timefmt import format_rfc3339

RUN = {
    "generation": 1,
    "spec": {},
    "targetNamespace": "tikv",
    "pdAddress": "http://127.0.0.1:9",
    "ticketCluster": "pd-1",
}
KILL_VICTIM = {"namespace": "tikv", "pod": "tikv-1", "uid": "pod-uid-1", "storeId": 2}
OUTAGE_VICTIM = {
    **KILL_VICTIM,
    "containerIndex": 0,
    "container": "tikv",
    "originalImage": "pingcap/tikv:v8.5.0",
    "pauseImage": "registry.k8s.io/pause:3.10",
}


def drill(status: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "d",
            "namespace": "tikv",
            "uid": "drill-uid",
            "generation": 1,
            "resourceVersion": "100",
            "finalizers": [FINALIZER],
        },
        "spec": spec or {},
        "status": {"observedGeneration": 1, "run": RUN, **status},
    }


class APIServer:
    """One ChaosDemo and the calls a step and a teardown make; every destructive call recorded.

    ``interrupt``: what the user does right after the step's first read of the object
    ('deletion' or 'abort'), i.e. while the step is running."""

    def __init__(self, obj: dict[str, Any], interrupt: str | None = None) -> None:
        self.obj = obj
        self.interrupt = interrupt
        self.reads = 0
        self.destructive: list[tuple[str, Any]] = []

    def _bump(self) -> None:
        meta = self.obj["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    async def get_chaosdemo(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        seen = copy.deepcopy(self.obj)
        if self.reads == 1 and self.interrupt == "deletion":
            self.obj["metadata"]["deletionTimestamp"] = "2026-12-05T09:00:00Z"
            self._bump()
        elif self.reads == 1 and self.interrupt == "abort":
            self.obj["spec"]["abort"] = True
            self.obj["metadata"]["generation"] += 1
            self._bump()
        return seen

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], *, resource_version: str | None = None
    ) -> dict[str, Any]:
        if resource_version is not None and resource_version != self.obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        current = self.obj.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        self._bump()
        return copy.deepcopy(self.obj)

    async def emit_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        return None

    async def delete_pod(self, namespace: str, name: str, uid: str, grace_seconds: int) -> str:
        self.destructive.append(("delete", name))
        return "deleted"

    async def patch_pod_if(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> str:
        self.destructive.append(("patch", [op.get("value") for op in ops if op["op"] == "replace"]))
        return "patched"

    async def get_pod(self, namespace: str, name: str) -> None:
        return None

    async def read_lease(self, namespace: str, name: str) -> None:
        return None


def deps_for(api: APIServer) -> Deps:
    return Deps(kube=api, db=None, config=OperatorConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize("interrupt", ["deletion", "abort"])
@pytest.mark.parametrize("victim", [KILL_VICTIM, OUTAGE_VICTIM], ids=["pod-kill", "store-outage"])
async def test_nothing_is_injected_once_a_stop_was_requested_mid_step(
    interrupt: str, victim: dict[str, Any]
) -> None:
    """The victim is chosen and recorded (phase Injecting); the user deletes or aborts the drill
    while the step that would inject runs: neither the pod's delete nor the image swap is sent."""
    obj = drill({"phase": "Injecting", "victim": victim, "timeline": {"injectingAt": "2026-12-05T08:59:59Z"}})
    api = APIServer(obj, interrupt=interrupt)
    await advance(deps_for(api), copy.deepcopy(obj))
    assert api.destructive == [], f"injected after the {interrupt} was requested: {api.destructive}"


async def test_nothing_is_injected_when_the_object_changed_between_read_and_claim() -> None:
    """The precondition itself: the step's re-read sees no stop, but the object changes before
    its claim is written; the API server answers 409 and nothing is injected."""
    obj = drill({"phase": "Injecting", "victim": KILL_VICTIM, "timeline": {"injectingAt": "2026-12-05T08:59:59Z"}})

    class ChangedUnderfoot(APIServer):
        async def get_chaosdemo(self, namespace: str, name: str) -> dict[str, Any]:
            seen = await super().get_chaosdemo(namespace, name)
            if self.reads == 2:  # the step's re-read, right before the destructive call
                self.obj["metadata"]["deletionTimestamp"] = "2026-12-05T09:00:00Z"
                self._bump()
            return seen

    api = ChangedUnderfoot(obj)
    await advance(deps_for(api), copy.deepcopy(obj))
    assert api.destructive == [], api.destructive


async def test_the_finalizer_restores_what_a_step_stopped_after_kopf_read_the_body() -> None:
    """kopf's body says Preflight (the deletion came then); the live object says the store was
    stopped since. The finalizer puts the original image back rather than releasing the drill as
    'deleted before anything was killed'."""
    stale = drill({"phase": "Preflight"})
    stale["metadata"]["deletionTimestamp"] = format_rfc3339(time.time())  # the restore's clock starts
    live = drill(
        {
            "phase": "Detecting",
            "victim": OUTAGE_VICTIM,
            "timeline": {"injectingAt": "2026-12-05T09:00:00.100Z", "injectedAt": "2026-12-05T09:00:00.200Z"},
        }
    )
    live["metadata"]["deletionTimestamp"] = stale["metadata"]["deletionTimestamp"]
    api = APIServer(live)
    done, message = await finalize(deps_for(api), stale)
    assert ("patch", [OUTAGE_VICTIM["originalImage"]]) in api.destructive, (api.destructive, message)
    assert "nothing" not in message and "before anything was killed" not in message, message
    # PD cannot confirm the store yet (nothing listens at the run's address): not done, retried.
    assert not done


async def test_the_finalizer_of_a_drill_that_never_injected_touches_nothing() -> None:
    stale = drill({"phase": "Preflight"})
    stale["metadata"]["deletionTimestamp"] = "2026-12-05T09:00:00Z"
    api = APIServer(copy.deepcopy(stale))
    done, message = await finalize(deps_for(api), stale)
    assert done and api.destructive == [] and "before anything was killed" in message, message
