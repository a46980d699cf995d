"""A drill is never stepped and torn down at once: the finalizer waits for a step in progress,
and a step never starts while a teardown holds the drill."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.operator.config import OperatorConfig
from controller.operator.drill import Deps, advance, finalize
from controller.operator.model import FINALIZER

OBJ: dict[str, Any] = {
    "metadata": {"name": "d", "namespace": "ns", "uid": "u-1", "generation": 1, "finalizers": [FINALIZER]},
    "spec": {},
    "status": {"phase": "Completed", "observedGeneration": 0},
}


class SlowKube:
    """Only what these two paths call: a read that blocks until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def get_chaosdemo(self, namespace: str, name: str) -> None:
        self.calls.append("step:start")
        self.entered.set()
        await self.release.wait()
        self.calls.append("step:end")


async def test_finalize_waits_for_a_step_in_progress() -> None:
    kube = SlowKube()
    deps = Deps(kube=kube, db=None, config=OperatorConfig())  # type: ignore[arg-type]
    stepping = asyncio.create_task(advance(deps, OBJ))
    await kube.entered.wait()
    tearing_down = asyncio.create_task(finalize(deps, OBJ))
    await asyncio.sleep(0.05)
    assert not tearing_down.done(), "finalize ran while the drill was being stepped"
    # A second step meanwhile is skipped, not run alongside.
    await advance(deps, OBJ)
    assert kube.calls == ["step:start"]
    kube.release.set()
    await stepping
    done, _ = await tearing_down
    # The finalizer's own read of the live object comes only once the step is over.
    assert done and kube.calls == ["step:start", "step:end", "step:start", "step:end"]


class FailingKube:
    """A step's first call fails with the given API error; status writes are recorded."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str]] = []

    async def get_chaosdemo(self, namespace: str, name: str) -> dict[str, Any]:
        return {**OBJ, "status": {"phase": "Preflight", "observedGeneration": 1, "run": RUN}}

    async def namespace_annotations(self, namespace: str) -> None:
        from kubernetes_asyncio.client.exceptions import ApiException

        raise ApiException(status=self.status, reason="Forbidden" if self.status == 403 else "Internal")

    async def read_lease(self, namespace: str, name: str) -> None:
        return None

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(status)
        return {"status": {"phase": status.get("phase", "Preflight"), "run": RUN}}

    async def emit_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason))


RUN = {
    "generation": 1,
    "spec": {},
    "targetNamespace": "ns",
    "pdAddress": "http://pd:2379",
    "ticketCluster": "x",
}


async def test_a_temporary_error_is_retried_within_a_second() -> None:
    kube = FailingKube(500)
    deps = Deps(kube=kube, db=None, config=OperatorConfig())  # type: ignore[arg-type]
    await advance(deps, {**OBJ, "status": {"phase": "Preflight", "observedGeneration": 1}})
    assert kube.patches == [], "nothing ended"
    assert deps.retries["u-1"].attempts == 1
    wait = deps.not_before["u-1"] - asyncio.get_running_loop().time()
    assert 0 < wait <= 0.6, f"retried after {wait:.2f}s, not kopf's 60 s"


async def test_a_permanent_error_ends_the_run_naming_the_field() -> None:
    kube = FailingKube(403)
    deps = Deps(kube=kube, db=None, config=OperatorConfig())  # type: ignore[arg-type]
    await advance(deps, {**OBJ, "status": {"phase": "Preflight", "observedGeneration": 1}})
    final = kube.patches[-1]
    assert (final["phase"], final["verdict"], final["reason"]) == ("Failed", "Error", "Forbidden")
    assert final["message"].startswith("spec.target.namespace: the API server answered 403")
    assert ("Warning", "Forbidden") in kube.events
    assert "u-1" not in deps.retries


class RecordingKube:
    """A new drill's start: status patches merged and recorded, Events recorded."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str]] = []

    async def get_chaosdemo(self, namespace: str, name: str) -> dict[str, Any]:
        return {**self.obj, "status": self.status}

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        for key, value in status.items():
            if value is None:
                self.status.pop(key, None)
            else:
                self.status[key] = value
        return {"status": dict(self.status)}

    async def emit_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason))


async def test_a_pd_address_outside_the_allow_list_is_refused() -> None:
    obj = {**OBJ, "spec": {"target": {"pdAddress": "http://fake-pd.evil:2379"}}, "status": None}
    kube = RecordingKube(obj)
    config = OperatorConfig(allowed_pd_addresses=frozenset({"http://pd.tikv.svc:2379/"}))
    deps = Deps(kube=kube, db=None, config=config)  # type: ignore[arg-type]
    await advance(deps, obj)
    assert (kube.status["verdict"], kube.status["reason"]) == ("Error", "PDAddressNotAllowed"), kube.status
    assert kube.status["message"].startswith("spec.target.pdAddress:")
    assert "run" not in kube.status, "nothing was pinned: the run never started"
