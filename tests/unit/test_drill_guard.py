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
    assert done and kube.calls == ["step:start", "step:end"]
