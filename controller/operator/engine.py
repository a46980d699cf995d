"""The drill engine (its reading order is in drill.py): ``advance`` takes the drill's guard and
runs the phase table from the API server's current object, a few steps per call, until a step
waits, the run ends, or a deletion or an abort is requested. Errors are sorted here: permanent
ones end the run, others are retried within seconds, and no run outlives its deadline."""

from __future__ import annotations

import logging
import time
from typing import Any

from controller.operator import decisions, metrics
from controller.operator.after_kill import detecting, recovering
from controller.operator.before_kill import pending, preflight
from controller.operator.crashpoints import holdpoint
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps, Retry
from controller.operator.diagnosing import diagnosing
from controller.operator.ending import end_run
from controller.operator.errors import classify
from controller.operator.injection import injecting
from controller.operator.model import FINALIZER, TERMINAL_PHASES, DrillSpec, Phase, Verdict
from controller.operator.runs import current_run
from controller.operator.state import (
    RunSnapshot,
)
from controller.operator.status import StatusWriter
from controller.operator.teardown import abort

log = logging.getLogger(__name__)


MAX_STEPS_PER_CALL = 12


def settled(obj: dict[str, Any]) -> bool:
    """A finished drill whose spec has not changed since: nothing to do (the common case)."""
    status = obj.get("status") or {}
    return status.get("phase") in TERMINAL_PHASES and status.get("observedGeneration") == obj["metadata"].get(
        "generation"
    )


def needs_stepping(obj: dict[str, Any]) -> bool:
    """kopf's timer runs only for these, so a thousand finished drills cost nothing."""
    return not settled(obj) and not obj["metadata"].get("deletionTimestamp")


async def advance(deps: Deps, obj: dict[str, Any]) -> None:
    if not needs_stepping(obj):
        return  # done, or the finalizer's handler owns a drill being deleted
    if FINALIZER not in (obj["metadata"].get("finalizers") or []):
        return  # kopf adds it first: never kill a pod that a deletion could not restore
    uid = obj["metadata"]["uid"]
    if time.monotonic() < deps.not_before.get(uid, 0.0):
        return
    guard = deps.guard(uid)
    if guard.locked():
        return  # being stepped or torn down; it (or the next tick) sees the change
    async with guard:
        deps.not_before.pop(uid, None)
        await _advance(deps, obj)


async def _advance(deps: Deps, obj: dict[str, Any]) -> None:
    # The caller's copy may lag behind our own last status write (watch events arrive later):
    # always step from the API server's current object, so no step is ever repeated.
    fresh = await deps.kube.get_chaosdemo(obj["metadata"]["namespace"], obj["metadata"]["name"])
    if fresh is None or not needs_stepping(fresh):
        return
    w = StatusWriter(deps.kube, fresh)
    try:
        run = await current_run(deps, w)
        if run is None:
            return
        spec = run.drill_spec()
        started = w.status.timeline.started_at
        metrics.drill_active(
            w.namespace,
            w.name,
            started + decisions.lease_seconds(spec) if started else None,
            cluster=run.ticket_cluster,
        )
        if (fresh.get("spec") or {}).get("abort") is True or w.status.safety_abort:
            await abort(deps, w, run, spec)
            return
        for _ in range(MAX_STEPS_PER_CALL):
            phase = w.status.phase or Phase.PENDING
            if phase in TERMINAL_PHASES or w.stop_requested:
                break  # a deletion is the finalizer's; an abort is the next call's, from the top
            if await _past_deadline(deps, w, run, spec):
                break
            await holdpoint(f"before-{phase.value}")
            if not await STEPS[phase](deps, w, w.status.run or run, spec):
                break
        deps.retries.pop(w.uid, None)
    except Exception as exc:
        await _on_error(deps, w, exc)


async def _on_error(deps: Deps, w: StatusWriter, exc: Exception) -> None:
    """Sort a step's failure: permanent ends the run, temporary is retried (bounded)."""
    phase = w.status.phase or Phase.PENDING
    metrics.STEP_ERRORS.labels(phase.value).inc()
    run = w.status.run
    permanent = classify(exc, field="spec")
    now = time.time()
    retry = deps.retries.setdefault(w.uid, Retry(first_failure=now))
    retry.attempts += 1
    gave_up = (
        permanent is None
        and not decisions.was_killed(w.status)
        and now - retry.first_failure > decisions.PREFLIGHT_RETRY_BUDGET
    )
    if permanent is None and not gave_up:
        delay = decisions.retry_delay(retry.attempts)
        log.warning("%s/%s: step in %s failed (retry in %.1fs): %r", w.namespace, w.name, phase, delay, exc)
        deps.backoff(w.uid, delay)
        return
    if permanent is not None:
        outcome = Outcome(Phase.FAILED, Verdict.ERROR, permanent.reason, str(permanent))
    else:
        outcome = Outcome(
            Phase.FAILED,
            Verdict.ERROR,
            "TemporaryFailurePersisted",
            f"{phase.value} kept failing for {decisions.PREFLIGHT_RETRY_BUDGET:.0f}s: {type(exc).__name__}: {exc}",
        )
    if decisions.was_killed(w.status):
        outcome = Outcome(
            outcome.phase, outcome.verdict, outcome.reason, outcome.message + "; the victim was killed"
        )
    try:
        await end_run(deps, w, run, outcome)
    except Exception as again:  # the API server itself is failing: the next tick tries again
        log.warning("%s/%s: could not end the run: %r", w.namespace, w.name, again)
        deps.backoff(w.uid, decisions.retry_delay(retry.attempts))


async def _past_deadline(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    injected_at = w.status.timeline.injected_at
    if injected_at is None or time.time() <= decisions.after_kill_deadline(spec, injected_at):
        return False
    await end_run(
        deps,
        w,
        run,
        Outcome(
            Phase.FAILED,
            Verdict.FAIL,
            "DeadlineExceeded",
            f"the run did not end within its deadline ({spec.detection.timeout_seconds}s detection, "
            f"{spec.recovery.timeout_seconds}s recovery, {decisions.DIAGNOSIS_BUDGET:.0f}s diagnosis)",
        ),
    )
    return True


STEPS = {
    Phase.PENDING: pending,
    Phase.PREFLIGHT: preflight,
    Phase.INJECTING: injecting,
    Phase.DETECTING: detecting,
    Phase.DIAGNOSING: diagnosing,
    Phase.RECOVERING: recovering,
}
