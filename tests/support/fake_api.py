"""A fake API server for the drill engine's unit tests: one ChaosDemo, the calls a step and a
teardown make, every destructive call recorded. It enforces the resourceVersion precondition the
way the real one does (409 when the object changed since it was read), and lets a test make a
race certain (a request that lands exactly while a step runs)."""

from __future__ import annotations

import copy
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.config import OperatorConfig
from controller.operator.drill import Deps
from controller.operator.model import FINALIZER

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
        self.replaced: set[str] = set()  # pod names now held by a pod someone else created

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
        if name in self.replaced:  # the uid precondition fails: the name is another pod's
            return "changed"
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
