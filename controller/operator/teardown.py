"""Abort and deletion: one teardown. Both decide from the live object and from what the
controller recorded before each destructive call, put back what the fault changed, and wait for
recovery's own "whole again" within the recovery timeout, then give up with a Warning."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from controller.operator import decisions, lock, metrics
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.ending import RESTORE_GAVE_UP, end_run, start_store_again
from controller.operator.model import TERMINAL_PHASES, DrillSpec, Phase, Verdict
from controller.operator.pd_access import pd_for
from controller.operator.recovery import observe_all
from controller.operator.state import (
    RunSnapshot,
)
from controller.operator.status import StatusWriter
from controller.timefmt import parse_optional_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restore:
    done: bool
    gave_up: bool
    message: str


async def _restore(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec, since: float) -> Restore:
    """Put back what the fault changed (a stopped store's image), then: is the victim whole
    again (recovery's own criterion)? The deadline is checked before anything that can fail, and
    a failing check only counts against it."""
    status = w.status
    victim = status.victim
    if victim is None or not decisions.was_killed(status):
        return Restore(True, False, "nothing was killed")
    timeout = spec.recovery.timeout_seconds
    if time.time() - since > timeout:
        return Restore(False, True, f"not restored within {timeout}s")
    injected_at = status.timeline.injected_at or status.timeline.injecting_at or 0.0
    try:
        await start_store_again(deps, w)
        obs = await observe_all(
            deps.kube,
            await pd_for(deps, run),
            w.status.all_victims,
            injected_at,
            w.status.timeline.restored_at,
        )
    except Exception as exc:
        return Restore(False, False, f"cannot check the victim yet: {type(exc).__name__}: {exc}")
    return Restore(obs.whole(injected_at), False, obs.describe())


async def abort(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> None:
    if not decisions.was_killed(w.status):
        await end_run(
            deps,
            w,
            run,
            Outcome(Phase.ABORTED, Verdict.ABORTED, "Aborted", "aborted before anything was deleted"),
        )
        return
    since = w.status.timeline.abort_requested_at
    if since is None:
        since = time.time()
        await w.patch(
            timeline=w.status.timeline.model_copy(update={"abort_requested_at": since}),
            reason="Restoring",
            message="abort requested; waiting for the victim to be whole again",
        )
        await deps.kube.emit_event(w.obj, "Normal", "Restoring", "abort requested; restoring")
    result = await _restore(deps, w, run, spec, since)
    why = f"aborted for safety ({w.status.safety_abort})" if w.status.safety_abort else "aborted"
    if result.done:
        await end_run(
            deps,
            w,
            run,
            Outcome(
                Phase.ABORTED,
                Verdict.ABORTED,
                "ClusterUnhealthy" if w.status.safety_abort else "Aborted",
                f"{why} and restored: {result.message}",
            ),
        )
    elif result.gave_up:
        await end_run(
            deps,
            w,
            run,
            Outcome(Phase.ABORTED, Verdict.ABORTED, RESTORE_GAVE_UP, f"{why}; {result.message}"),
        )
    else:
        deps.backoff(w.uid, 0.5)


async def finalize(deps: Deps, obj: dict[str, Any]) -> tuple[bool, str]:
    """The finalizer: restore the victim if the drill had killed it. Returns (done, message).

    Waits for any step in progress (never stepped and torn down at once). A restore that cannot
    finish within recovery.timeoutSeconds of the deletion gives up with a Warning Event rather
    than hold the ChaosDemo's deletion forever.
    """
    uid = obj["metadata"]["uid"]
    async with deps.guard(uid):
        task = deps.diagnoses.pop(uid, None)
        if task is not None:
            task.cancel()
        # kopf's body is as old as the deletion: a step that was running meanwhile may have
        # injected since. Decide from the object as it is now.
        live = await deps.kube.get_chaosdemo(obj["metadata"]["namespace"], obj["metadata"]["name"])
        if live is not None and live["metadata"].get("uid") == uid:
            obj = live
        w = StatusWriter(deps.kube, obj)
        run = w.status.run
        if run is None or w.status.phase in TERMINAL_PHASES:
            metrics.drill_inactive(w.namespace, w.name)
            deps.forget(uid)
            deps.guards.pop(uid, None)
            return True, "nothing to restore"
        spec = run.drill_spec()
        # deletionTimestamp has whole seconds: the deletion came up to a second after it, and the
        # restore gets its full timeout from the latest moment it can have been.
        deleted = parse_optional_rfc3339(obj["metadata"].get("deletionTimestamp"))
        since = deleted + 1.0 if deleted is not None else time.time()
        result = await _restore(deps, w, run, spec, since)
        if not (result.done or result.gave_up):
            return False, result.message
        outcome = (
            Outcome(Phase.ABORTED, Verdict.ABORTED, "Deleted", "deleted before anything was killed")
            if not decisions.was_killed(w.status)
            else Outcome(
                Phase.ABORTED, Verdict.ABORTED, "Restored", f"deleted mid-drill; restored: {result.message}"
            )
            if result.done
            else Outcome(
                Phase.ABORTED,
                Verdict.ABORTED,
                RESTORE_GAVE_UP,
                f"gave up restoring: {result.message}; releasing the finalizer",
            )
        )
        try:
            await end_run(deps, w, run, outcome)
        except Exception as exc:  # the object is going away: never hold its deletion for a status write
            log.warning("%s/%s: could not record the end of the run: %r", w.namespace, w.name, exc)
            await lock.release(deps.kube, run.target_namespace, w.obj)
        deps.guards.pop(uid, None)
        return True, outcome.message
