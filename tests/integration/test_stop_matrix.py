"""A drill stopped, by deletion or by abort, at every step boundary and at the two moments inside
the injection step where the race lives, against the real API server, the real StatefulSet
controller and a real controller process: nothing is ever injected after the request, and
whatever was injected is put back.

The controller holds a step at a named point (``CHAOSDEMO_HOLD_CONTROL``) while the test lands
the deletion or the abort in the API server, then lets the step go on: the race is certain, not
hoped for. The injection's claim (``injectionSentAt``, written with the object's resourceVersion
as the API server's precondition) is the line: a stop requested before it means nothing is
injected, ever; a stop after it is the teardown's to put right. Then a few stops at random
moments, wherever they fall.

The truth is the API server's own record of the victim: every image its TiKV container had
(store-outage), every uid its name had (pod-kill)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from tests.support.drills import DrillEnv, ImageHistory, PodHistory, started_drill_env, wait_for

TERMINAL = {"Completed", "Failed", "Aborted"}
PAUSE = "registry.k8s.io/pause:3.10"
TIKV_IMAGE = "pingcap/tikv:v8.5.0"
POD = "tikv-0"
BEFORE_CLAIM = ("before-Preflight", "before-Injecting", "claim-read")
AFTER_CLAIM = ("claim-written", "before-Detecting")
HOW = ("delete", "abort")


def _outage(seconds: int = 600) -> dict[str, Any]:
    return {
        "target": {"pod": POD},
        "fault": {"action": "store-outage", "durationSeconds": seconds},
        "recovery": {"waitForLeadersSeconds": 0},
    }


def _pod_kill() -> dict[str, Any]:
    return {"target": {"pod": POD}, "recovery": {"waitForLeadersSeconds": 0}}


def _exists(env: DrillEnv, name: str) -> bool:
    return env.kubectl("get", "chaosdemo", name, "-n", env.ns, check=False).returncode == 0


def _stop(env: DrillEnv, name: str, how: str) -> None:
    if how == "delete":
        env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=false")
    else:
        env.kubectl("patch", "chaosdemo", name, "-n", env.ns, "--type=merge", "-p", '{"spec":{"abort":true}}')


def _wait_stopped(env: DrillEnv, name: str, how: str) -> dict[str, Any] | None:
    """Deleted: gone (the finalizer let it go). Aborted: ended, then deleted for the next case."""
    if how == "delete":
        wait_for(lambda: not _exists(env, name), 120, f"{name} to be gone")
        return None
    st = env.wait_phase(name, TERMINAL, timeout=120)
    env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=false")
    try:
        wait_for(lambda: not _exists(env, name), 120, f"{name} to be gone after it ended")
    except AssertionError as exc:  # what held it: the finalizer, the phase, the controller's log
        left = env.kubectl("get", "chaosdemo", name, "-n", env.ns, "-o", "yaml", check=False).stdout
        log = (env.workdir / "controller.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{exc}\n{left}\n--- controller log ---\n{log}") from exc
    return st


def _victim_image(env: DrillEnv) -> str | None:
    """The image the victim's spec names now (Ready or not)."""
    return next(
        (
            p["spec"]["containers"][0]["image"]
            for p in env.cluster.tikv_pods()
            if p["metadata"]["name"] == POD
        ),
        None,
    )


def _victim_runs_tikv(env: DrillEnv) -> bool:
    return any(
        p["metadata"]["name"] == POD and p["spec"]["containers"][0]["image"] == TIKV_IMAGE
        for p in env.cluster.ready_tikv_pods()
    )


def _settle(env: DrillEnv) -> None:
    wait_for(lambda: env.ready_pods() == 3 and _victim_runs_tikv(env), 60, "every pod Ready, running TiKV")
    env.wait_no_open_tickets(90)


class Holds:
    """The control file the controller reads at each hold point."""

    def __init__(self, workdir: Path) -> None:
        self.control = workdir / "hold"
        self.held = Path(f"{self.control}.held")

    def arm(self, point: str) -> None:
        self.held.unlink(missing_ok=True)
        self.control.write_text(point)

    def wait_held(self, name: str, point: str) -> None:
        wait_for(self.held.exists, 90, f"{name} to be held at {point}")

    def release(self) -> None:
        self.control.unlink(missing_ok=True)


def _env(tikv_cluster_factory, tmp_path: Path) -> tuple[DrillEnv, Holds]:  # type: ignore[no-untyped-def]
    workdir = tmp_path / "drill"
    holds = Holds(tmp_path)
    return started_drill_env(
        tikv_cluster_factory(), workdir, CHAOSDEMO_HOLD_CONTROL=str(holds.control)
    ), holds


def test_store_outage_stopped_at_every_point(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, holds = _env(tikv_cluster_factory, tmp_path)
    seen: dict[str, list[str]] = {}
    try:
        for point in (*BEFORE_CLAIM, *AFTER_CLAIM):
            for how in HOW:
                name = f"outage-{how}-{point.lower()}"
                holds.arm(point)
                with ImageHistory(env.cluster, POD) as images:
                    env.drill(name, _outage())
                    holds.wait_held(name, point)
                    _stop(env, name, how)
                    holds.release()
                    st = _wait_stopped(env, name, how)
                    # Put back before the object went or ended, not some time after.
                    assert _victim_image(env) == TIKV_IMAGE, (name, images.images)
                seen[name] = images.sequence()
                expected = [TIKV_IMAGE] if point in BEFORE_CLAIM else [TIKV_IMAGE, PAUSE, TIKV_IMAGE]
                assert images.sequence() == expected, (name, images.images, st)
                if st is not None:
                    assert st["phase"] == "Aborted", (name, st)
                    assert ("injectedAt" in st["timeline"]) == (point in AFTER_CLAIM), (name, st["timeline"])
                _settle(env)

        # Random moments: wherever the stop lands, the image goes out and back, or never out.
        rng = random.Random(20261205)
        for i in range(3):
            name, how = f"outage-random-{i}", HOW[i % 2]
            with ImageHistory(env.cluster, POD) as images:
                env.drill(name, _outage())
                wait_for(lambda n=name: _exists(env, n), 10, f"{name} created")
                time.sleep(rng.uniform(0.0, 2.0))  # a moment somewhere in its first steps
                _stop(env, name, how)
                _wait_stopped(env, name, how)
                assert _victim_image(env) == TIKV_IMAGE, (name, images.images)
            seen[name] = images.sequence()
            assert images.sequence() in ([TIKV_IMAGE], [TIKV_IMAGE, PAUSE, TIKV_IMAGE]), (name, images.images)
            _settle(env)
    finally:
        holds.release()
        env.stop()


def test_pod_kill_stopped_around_the_claim(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, holds = _env(tikv_cluster_factory, tmp_path)
    try:
        for point in ("before-Injecting", "claim-read", "claim-written"):
            for how in HOW:
                name = f"kill-{how}-{point.lower()}"
                holds.arm(point)
                with PodHistory(env.cluster) as history:
                    env.drill(name, _pod_kill())
                    holds.wait_held(name, point)
                    _stop(env, name, how)
                    holds.release()
                    st = _wait_stopped(env, name, how)
                    _settle(env)
                expected = {} if point in BEFORE_CLAIM else {POD: 1}
                assert history.replaced() == expected, (name, history.uids, st)
                if st is not None:
                    assert st["phase"] == "Aborted", (name, st)
    finally:
        holds.release()
        env.stop()
