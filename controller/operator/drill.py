"""A drill's state machine. ``advance`` runs as many steps as can run now and returns.

Each step reads the status it (or a crashed predecessor) wrote, does one thing, and records it
before the next: the victim is written before the delete, the delete carries a uid
precondition, and a repeated step finds its work already done. So a controller killed at any
point and restarted kills at most one pod per drill and carries on where it was.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from controller.diagnosis.evidence import DrillRecord
from controller.diagnosis.grading import grade
from controller.diagnosis.schema import DiagnosisOutput
from controller.diagnosis.service import diagnose_ticket
from controller.operator import lock, metrics, restore
from controller.operator.config import OperatorConfig
from controller.operator.crashpoints import crashpoint
from controller.operator.evidence import gather
from controller.operator.kube import Kube
from controller.operator.model import FINALIZER, HISTORY_LIMIT, TERMINAL_PHASES, DrillSpec, Phase, Verdict
from controller.operator.preflight import run_preflight
from controller.operator.status import StatusWriter, parse_rfc3339, rfc3339, seconds_text
from controller.pd import PDClient
from controller.pd.models import pod_of_address
from controller.prom import PrometheusClient
from controller.tickets import TicketDB

log = logging.getLogger(__name__)
MAX_STEPS_PER_CALL = 12
# Preflight refusals that a drill queued behind another one waits out rather than fails on.
SETTLING_REASONS = frozenset({"OpenTicket", "StoreNotUp"})
WAIT_RECHECK_SECONDS = 2.0


@dataclass
class Deps:
    kube: Kube
    db: TicketDB
    config: OperatorConfig
    prom: PrometheusClient | None = None
    _pd: dict[str, PDClient] = field(default_factory=dict)
    # Drills being advanced right now (by uid): the timer and the event reaction never step
    # the same drill at once.
    running: set[str] = field(default_factory=set)
    # Drills that are only waiting (for a target lock, for the cluster to settle) are looked at
    # again no sooner than this (by uid): hundreds of queued drills must not poll every tick.
    not_before: dict[str, float] = field(default_factory=dict)

    def backoff(self, obj: dict[str, Any], seconds: float) -> None:
        self.not_before[obj["metadata"]["uid"]] = time.monotonic() + seconds

    def pd(self, spec: DrillSpec) -> PDClient:
        address = spec.target.pd_address or self.config.pd_address
        if address not in self._pd:
            self._pd[address] = PDClient(address)
        return self._pd[address]

    def cluster(self, spec: DrillSpec) -> str:
        """The name tickets carry for this cluster: the monitor's default is PD's URL."""
        return self.pd(spec).base_url

    async def aclose(self) -> None:
        for client in self._pd.values():
            await client.aclose()


Step = Callable[[Deps, StatusWriter, DrillSpec], Awaitable[bool]]


def target_namespace(w: StatusWriter, spec: DrillSpec) -> str:
    return spec.target_namespace(w.namespace)


# -- entry point -----------------------------------------------------------------------------------
def settled(obj: dict[str, Any]) -> bool:
    """A finished drill whose spec has not changed since: nothing to do (the common case)."""
    status = obj.get("status") or {}
    return status.get("phase") in TERMINAL_PHASES and status.get("observedGeneration") == obj["metadata"].get(
        "generation"
    )


async def advance(deps: Deps, obj: dict[str, Any]) -> None:
    if settled(obj) or obj["metadata"].get("deletionTimestamp"):
        return  # done, or the finalizer's handler owns a drill being deleted
    if FINALIZER not in (obj["metadata"].get("finalizers") or []):
        return  # kopf adds it first: never kill a pod that a deletion could not restore
    uid = obj["metadata"]["uid"]
    if time.monotonic() < deps.not_before.get(uid, 0.0):
        return
    deps.not_before.pop(uid, None)
    if uid in deps.running:
        return  # another call is stepping this drill; it (or the next tick) sees the change
    deps.running.add(uid)
    try:
        await _advance(deps, obj)
    finally:
        deps.running.discard(uid)


async def _advance(deps: Deps, obj: dict[str, Any]) -> None:
    # The caller's copy may lag behind our own last status write (watch events arrive later):
    # always step from the API server's current object, so no step is ever repeated.
    fresh = await deps.kube.get_chaosdemo(obj["metadata"]["namespace"], obj["metadata"]["name"])
    if fresh is None or fresh["metadata"].get("deletionTimestamp"):
        return
    obj = fresh
    w = StatusWriter(deps.kube, obj)
    generation = obj["metadata"].get("generation", 1)
    try:
        spec = DrillSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        if w.phase != Phase.FAILED or w.status.get("observedGeneration") != generation:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            await w.finish(
                Phase.FAILED,
                Verdict.ERROR,
                "InvalidSpec",
                f"spec.{where}: {first['msg']}",
                extra={"observedGeneration": generation},
            )
        return

    if w.phase in TERMINAL_PHASES:
        if w.status.get("observedGeneration") == generation:
            return
        if spec.abort:  # nothing is running, so nothing to abort: acknowledge the change
            await w.patch({"observedGeneration": generation})
            return
        await _start_run(w, generation, archive=True)
    elif w.phase is None:
        await _start_run(w, generation, archive=False)

    if spec.abort:
        await _abort(deps, w, spec)
        return
    for _ in range(MAX_STEPS_PER_CALL):
        phase = Phase(w.phase or Phase.PENDING)
        if phase in TERMINAL_PHASES:
            return
        moved = await STEPS[phase](deps, w, spec)
        if not moved:
            return


def _compact(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "generation": status.get("observedGeneration"),
        "phase": status.get("phase"),
        "verdict": status.get("verdict"),
        "reason": status.get("reason"),
        "victim": (status.get("victim") or {}).get("pod"),
        "ticketId": (status.get("incident") or {}).get("ticketId"),
        "timeToDetectSeconds": (status.get("metrics") or {}).get("timeToDetectSeconds"),
        "timeToRecoverSeconds": (status.get("metrics") or {}).get("timeToRecoverSeconds"),
        "rootCauseCategory": (status.get("diagnosis") or {}).get("rootCauseCategory"),
        "startedAt": (status.get("timeline") or {}).get("startedAt"),
        "completedAt": (status.get("timeline") or {}).get("completedAt"),
    }


async def _start_run(w: StatusWriter, generation: int, *, archive: bool) -> None:
    patch: dict[str, Any] = {
        "phase": Phase.PENDING.value,
        "observedGeneration": generation,
        "verdict": None,
        "reason": "Accepted",
        "message": "drill accepted",
        "timeline": {"startedAt": rfc3339(time.time())},
        "conditions": [],
        "victim": None,
        "incident": None,
        "diagnosis": None,
        "metrics": None,
    }
    if archive:
        history = [_compact(w.status), *(w.status.get("history") or [])][:HISTORY_LIMIT]
        patch["history"] = history
    # A fresh run replaces the whole timeline: null it first so merge-patch drops old keys.
    await w.patch({"timeline": None})
    await w.transition(Phase.PENDING, "Accepted", f"drill accepted (generation {generation})", extra=patch)


# -- steps ---------------------------------------------------------------------------------------------
async def _pending(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    ns = target_namespace(w, spec)
    acquired, holder = await lock.acquire(deps.kube, ns, w.obj)
    if not acquired:
        deps.backoff(w.obj, WAIT_RECHECK_SECONDS)
        message = f"another drill is running on namespace {ns} ({holder}); waiting for it to finish"
        if w.status.get("reason") != "WaitingForTarget":
            await w.patch(
                {
                    "reason": "WaitingForTarget",
                    "message": message,
                    "queuedAt": w.status.get("queuedAt") or rfc3339(time.time()),
                }
            )
            await deps.kube.emit_event(w.obj, "Normal", "WaitingForTarget", message)
        return False
    crashpoint("lock-acquired")
    await w.transition(Phase.PREFLIGHT, "TargetLocked", f"running preflight on namespace {ns}")
    return True


def choose_victim(candidates: list[Any], spec: DrillSpec, seed: str) -> Any:
    """Random but repeatable per drill run: a restarted controller chooses the same pod."""
    if spec.target.pod:
        return next(p for p in candidates if p.metadata.name == spec.target.pod)
    ordered = sorted(candidates, key=lambda p: p.metadata.name)
    return random.Random(seed).choice(ordered)


async def _preflight(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    ns = target_namespace(w, spec)
    result = await run_preflight(
        kube=deps.kube,
        spec=spec,
        target_namespace=ns,
        allowed_namespaces=deps.config.allowed_namespaces,
        pd=deps.pd(spec),
        db=deps.db,
        cluster=deps.cluster(spec),
    )
    queued_at = parse_rfc3339(w.status.get("queuedAt"))
    if (
        not result.ok
        and result.reason in SETTLING_REASONS
        and queued_at is None
        and await lock.recently_finished_elsewhere(deps.kube, ns, w.obj, spec.recovery.timeout_seconds)
    ):
        queued_at = time.time()  # right behind another drill: as good as queued
        await w.patch({"queuedAt": rfc3339(queued_at)})
    if (
        not result.ok
        and result.reason in SETTLING_REASONS
        and queued_at is not None
        and time.time() - queued_at < spec.recovery.timeout_seconds
    ):
        # Queued behind another drill on this target: its ticket is still open or its store
        # is coming back. Hold the lock and wait for the cluster to settle instead of failing.
        deps.backoff(w.obj, WAIT_RECHECK_SECONDS)
        if w.status.get("reason") != "WaitingForHealthyCluster":
            await w.patch({"reason": "WaitingForHealthyCluster", "message": result.message})
        return False
    if not result.ok:
        await lock.release(deps.kube, ns, w.obj)
        await w.finish(
            Phase.FAILED,
            Verdict.ERROR,
            result.reason,
            f"preflight refused: {result.message}",
            extra={"conditions": w.condition("Selected", False, result.reason, result.message)},
        )
        metrics.DRILLS.labels(Verdict.ERROR.value).inc()
        return True
    seed = f"{w.obj['metadata']['uid']}/{w.status.get('observedGeneration')}"
    pod = choose_victim(result.candidates, spec, seed)
    store = next(s for s in result.stores if pod_of_address(s.store.address) == (pod.metadata.name, ns))
    victim = {
        "namespace": ns,
        "pod": pod.metadata.name,
        "uid": pod.metadata.uid,
        "node": pod.spec.node_name,
        "storeId": store.id,
        "storeAddress": store.store.address,
        "manifest": restore.saved_manifest(deps.kube.api, pod),
    }
    selected = (
        f"selected {ns}/{pod.metadata.name} (store {store.id}) among {len(result.candidates)} candidate(s)"
    )
    if spec.safety.dry_run:
        await lock.release(deps.kube, ns, w.obj)
        await w.finish(
            Phase.COMPLETED,
            Verdict.PASS,
            "DryRun",
            f"dry run: preflight passed; would kill {ns}/{pod.metadata.name} (store {store.id}); "
            "nothing was deleted",
            extra={"victim": victim, "conditions": w.condition("Selected", True, "DryRun", selected)},
        )
        return True
    timeline = {**(w.status.get("timeline") or {}), "injectingAt": rfc3339(time.time())}
    await w.transition(
        Phase.INJECTING,
        "VictimSelected",
        selected,
        extra={
            "victim": victim,
            "timeline": timeline,
            "conditions": w.condition("Selected", True, "VictimSelected", selected),
        },
    )
    crashpoint("victim-persisted")
    return True


async def _injecting(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    victim = w.status["victim"]
    outcome = await deps.kube.delete_pod(
        victim["namespace"], victim["pod"], victim["uid"], spec.fault.grace_period_seconds
    )
    crashpoint("pod-deleted")
    now = time.time()
    # 'gone' means a previous attempt (before a crash) already deleted it: it happened right
    # after injectingAt was written, so that is the best record of the kill time.
    injected_at = now if outcome == "deleted" else (w.time_of("injectingAt") or now)
    timeline = {**(w.status.get("timeline") or {}), "injectedAt": rfc3339(injected_at)}
    created = parse_rfc3339(w.obj["metadata"].get("creationTimestamp"))
    if created and outcome == "deleted":
        metrics.REACTION.observe(max(0.0, injected_at - created))
    message = (
        f"deleted pod {victim['pod']} (uid {victim['uid'][:8]}, grace {spec.fault.grace_period_seconds}s)"
        if outcome == "deleted"
        else f"pod {victim['pod']} (uid {victim['uid'][:8]}) was already gone"
    )
    await w.transition(
        Phase.DETECTING,
        "PodKilled",
        message,
        extra={"timeline": timeline, "conditions": w.condition("Injected", True, "PodKilled", message)},
    )
    crashpoint("injected-recorded")
    return True


async def _detecting(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    victim = w.status["victim"]
    injected_at = w.time_of("injectedAt") or time.time()
    # One second of slack for clocks; preflight made sure no ticket was open before the kill.
    tickets = await deps.db.find_for_store(deps.cluster(spec), victim["storeId"], since=injected_at - 1.0)
    now = time.time()
    if tickets:
        ticket = tickets[0]
        crashpoint("ticket-found")
        ttd = max(0.0, ticket.opened_at - injected_at)
        metrics.TIME_TO_DETECT.observe(ttd)
        within = ttd <= spec.detection.expect_within_seconds
        message = (
            f"ticket #{ticket.id} ({ticket.invariant}) opened {ttd:.1f}s after the kill; SLO "
            f"{spec.detection.expect_within_seconds}s {'met' if within else 'MISSED'}"
        )
        timeline = {**(w.status.get("timeline") or {}), "detectedAt": rfc3339(ticket.opened_at)}
        extra = {
            "timeline": timeline,
            "incident": {
                "ticketId": ticket.id,
                "invariant": ticket.invariant,
                "severity": ticket.severity.value,
                "detectedBy": "monitor",
                "signals": ticket.signals,
            },
            "metrics": {
                **(w.status.get("metrics") or {}),
                "timeToDetectSeconds": round(ttd, 3),
                "timeToDetect": seconds_text(ttd),
            },
            "conditions": w.condition(
                "Detected", True, "TicketOpened" if within else "DetectedLate", message
            ),
        }
        next_phase = Phase.DIAGNOSING if spec.diagnosis.enabled else Phase.RECOVERING
        await w.transition(next_phase, "Detected", message, extra=extra)
        return True
    if now - injected_at > spec.detection.timeout_seconds:
        metrics.DETECTION_MISSES.inc()
        message = (
            f"no ticket for store {victim['storeId']} within {spec.detection.timeout_seconds}s of the kill"
        )
        await w.transition(
            Phase.RECOVERING,
            "Undetected",
            message,
            event_type="Warning",
            extra={"conditions": w.condition("Detected", False, "DetectionTimeout", message)},
        )
        return True
    return False


def compact_diagnosis(
    output: DiagnosisOutput,
    *,
    diagnoser: str,
    model: str | None,
    fallback_reason: str | None,
    matches: bool,
    grade_reason: str,
) -> dict[str, Any]:
    return {
        "summary": output.summary[:500],
        "rootCauseCategory": output.root_cause_category.value,
        "severity": output.severity.value,
        "confidence": output.confidence.value,
        "diagnoser": diagnoser,
        "model": model,
        "matchesInjectedFault": matches,
        "gradeReason": grade_reason,
        "fallbackReason": fallback_reason,
    }


def _corroborated(ticket: Any) -> bool:
    """Two different signals (say: unreachable, then restarted) tell a story; one signal seen by
    two sources only confirms the first line of it."""
    return len(set(ticket.signals)) >= 2


async def _diagnosing(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    victim = w.status["victim"]
    ticket_id = w.status["incident"]["ticketId"]
    ticket = await deps.db.get(ticket_id)
    detected_at = w.time_of("detectedAt") or 0.0
    if (
        ticket is not None
        and not _corroborated(ticket)
        and time.time() - detected_at < deps.config.diagnosis_settle
    ):
        # The first signal of an incident rarely explains it: give the monitor a few cycles to
        # add corroborating evidence (the restart, PD's view) before judging.
        return False
    try:
        if ticket is None:
            raise LookupError(f"ticket #{ticket_id} is no longer in the ticket store")
        if ticket.diagnosis and (ticket.diagnosed_at or 0) >= detected_at:
            # Diagnosed before a restart: reuse it rather than pay (and wait) twice.
            output = DiagnosisOutput.model_validate(ticket.diagnosis)
            diagnoser, model = ticket.diagnoser or "", ticket.model
            fallback = (ticket.diagnosis_meta or {}).get("fallback_reason")
        else:
            drill = DrillRecord(
                action=spec.fault.action,
                pod=victim["pod"],
                namespace=victim["namespace"],
                store_id=victim["storeId"],
                injected_at=w.time_of("injectedAt") or 0.0,
            )
            data = await gather(
                ticket=ticket,
                db=deps.db,
                pd=deps.pd(spec),
                prom=deps.prom,
                kube=deps.kube,
                namespace=victim["namespace"],
                pod=victim["pod"],
                drill=drill,
                cluster=deps.cluster(spec),
                tikv_job=deps.config.tikv_job,
            )
            result = await diagnose_ticket(
                deps.db,
                data,
                provider=spec.diagnosis.provider,
                model=spec.diagnosis.model,
                blind=spec.diagnosis.blind,
            )
            output, diagnoser, model, fallback = (
                result.output,
                result.diagnoser,
                result.model,
                result.fallback_reason,
            )
        crashpoint("diagnosed")
    except Exception as exc:  # a diagnosis problem must not cost the drill its recovery measurement
        log.exception("diagnosis of ticket %s failed", ticket_id)
        message = f"diagnosis failed: {type(exc).__name__}: {exc}"
        await w.transition(
            Phase.RECOVERING,
            "DiagnosisFailed",
            message,
            event_type="Warning",
            extra={"conditions": w.condition("Diagnosed", False, "DiagnosisFailed", message)},
        )
        return True
    g = grade(output, action=spec.fault.action, pod=victim["pod"], store_id=victim["storeId"])
    message = (
        f"{output.root_cause_category.value} ({output.confidence.value} confidence) by {diagnoser}"
        f"{f' [fallback: {fallback}]' if fallback else ''}; matches the injected fault: {g.matches}"
    )
    timeline = {**(w.status.get("timeline") or {}), "diagnosedAt": rfc3339(time.time())}
    await w.transition(
        Phase.RECOVERING,
        "Diagnosed",
        message,
        extra={
            "timeline": timeline,
            "diagnosis": compact_diagnosis(
                output,
                diagnoser=diagnoser,
                model=model,
                fallback_reason=fallback,
                matches=g.matches,
                grade_reason=g.reason,
            ),
            "conditions": w.condition(
                "Diagnosed", True, "Diagnosed" if g.matches else "DiagnosisMismatch", message
            ),
        },
    )
    return True


async def _recovering(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    victim = w.status["victim"]
    injected_at = w.time_of("injectedAt") or time.time()
    state = await restore.check(deps.kube, deps.pd(spec), victim, injected_at=injected_at)
    now = time.time()
    timeline = dict(w.status.get("timeline") or {})
    if state.pod_ready and state.replaced and "podReadyAt" not in timeline:
        timeline["podReadyAt"] = rfc3339(now)
        await w.patch(
            {
                "timeline": timeline,
                "metrics": {
                    **(w.status.get("metrics") or {}),
                    "podReadySeconds": round(now - injected_at, 3),
                },
            }
        )
        crashpoint("pod-ready")
    recovered = state.pod_ready and state.store_up and state.restarted
    if recovered:
        timeline.setdefault("podReadyAt", rfc3339(now))
        timeline["storeUpAt"] = rfc3339(now)
        ttr = now - injected_at
        metrics.TIME_TO_RECOVER.observe(ttr)
        m = {
            **(w.status.get("metrics") or {}),
            "timeToRecoverSeconds": round(ttr, 3),
            "timeToRecover": seconds_text(ttr),
        }
        m.setdefault("podReadySeconds", round(ttr, 3))
        conditions = w.condition("Recovered", True, "StoreUp", f"{state.message} {ttr:.1f}s after the kill")
        await _finish_with_verdict(
            deps,
            w,
            spec,
            recovered=True,
            extra={"timeline": timeline, "metrics": m, "conditions": conditions},
        )
        return True
    if now - injected_at > spec.recovery.timeout_seconds:
        message = f"not recovered {spec.recovery.timeout_seconds}s after the kill: {state.message}"
        conditions = w.condition("Recovered", False, "RecoveryTimeout", message)
        await _finish_with_verdict(
            deps,
            w,
            spec,
            recovered=False,
            extra={"timeline": timeline, "conditions": conditions},
            detail=state.message,
        )
        return True
    return False


async def _finish_with_verdict(
    deps: Deps, w: StatusWriter, spec: DrillSpec, *, recovered: bool, extra: dict[str, Any], detail: str = ""
) -> None:
    ttd = (w.status.get("metrics") or {}).get("timeToDetectSeconds")
    slo = spec.detection.expect_within_seconds
    if ttd is None:
        phase, verdict, reason = Phase.FAILED, Verdict.UNDETECTED, "Undetected"
        message = f"the monitor never ticketed the kill within {spec.detection.timeout_seconds}s"
    elif not recovered:
        phase, verdict, reason = Phase.FAILED, Verdict.FAIL, "RecoveryTimeout"
        message = (
            f"detected in {ttd:.1f}s but the store did not recover within {spec.recovery.timeout_seconds}s"
            f"{': ' + detail if detail else ''}"
        )
    elif ttd > slo:
        phase, verdict, reason = Phase.FAILED, Verdict.FAIL, "DetectionSLOMissed"
        message = f"detected in {ttd:.1f}s, over the {slo}s SLO; recovered"
    else:
        phase, verdict, reason = Phase.COMPLETED, Verdict.PASS, "Passed"
        message = f"detected in {ttd:.1f}s (SLO {slo}s) and recovered"
    if recovered:
        ttr = extra.get("metrics", {}).get("timeToRecoverSeconds")
        message += f" in {ttr:.1f}s" if ttr is not None and verdict == Verdict.PASS else ""
    await w.finish(phase, verdict, reason, message, extra=extra)
    metrics.DRILLS.labels(verdict.value).inc()
    crashpoint("finished")
    await lock.release(deps.kube, target_namespace(w, spec), w.obj)


async def _abort(deps: Deps, w: StatusWriter, spec: DrillSpec) -> None:
    ns = target_namespace(w, spec)
    victim = w.status.get("victim")
    killed = victim is not None and w.phase != Phase.PREFLIGHT and w.time_of("injectingAt") is not None
    if not killed:
        await lock.release(deps.kube, ns, w.obj)
        await w.finish(Phase.ABORTED, Verdict.ABORTED, "Aborted", "aborted before anything was deleted")
        metrics.DRILLS.labels(Verdict.ABORTED.value).inc()
        return
    assert victim is not None
    state = await restore.check(deps.kube, deps.pd(spec), victim, injected_at=w.time_of("injectedAt"))
    abort_started = w.time_of("abortRequestedAt")
    now = time.time()
    if abort_started is None:
        timeline = {**(w.status.get("timeline") or {}), "abortRequestedAt": rfc3339(now)}
        await w.patch(
            {
                "timeline": timeline,
                "reason": "Restoring",
                "message": f"abort requested; restoring: {state.message}",
            }
        )
        await deps.kube.emit_event(w.obj, "Normal", "Restoring", f"abort requested; {state.message}")
        abort_started = now
    if state.done:
        await lock.release(deps.kube, ns, w.obj)
        await w.finish(Phase.ABORTED, Verdict.ABORTED, "Aborted", f"aborted and restored: {state.message}")
        metrics.DRILLS.labels(Verdict.ABORTED.value).inc()
    elif now - abort_started > spec.recovery.timeout_seconds:
        await lock.release(deps.kube, ns, w.obj)
        await w.finish(
            Phase.ABORTED,
            Verdict.ABORTED,
            "RestoreTimedOut",
            f"aborted; restore did not finish within {spec.recovery.timeout_seconds}s: {state.message}",
        )
        metrics.DRILLS.labels(Verdict.ABORTED.value).inc()


async def finalize(deps: Deps, obj: dict[str, Any]) -> tuple[bool, str]:
    """The finalizer: restore the victim if the drill had killed it. Returns (done, message).

    A restore that cannot finish within recovery.timeoutSeconds of the deletion gives up with a
    Warning Event rather than hold the ChaosDemo's deletion forever.
    """
    w = StatusWriter(deps.kube, obj)
    try:
        spec = DrillSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return True, "invalid spec: nothing was run"
    ns = target_namespace(w, spec)
    victim = w.status.get("victim")
    phase = w.phase
    if victim is None or phase in TERMINAL_PHASES or w.time_of("injectingAt") is None:
        await lock.release(deps.kube, ns, w.obj)
        return True, "nothing to restore"
    state = await restore.check(deps.kube, deps.pd(spec), victim, injected_at=w.time_of("injectedAt"))
    if state.done:
        await lock.release(deps.kube, ns, w.obj)
        await deps.kube.emit_event(
            w.obj, "Normal", "Restored", f"deleted mid-drill; restored: {state.message}"
        )
        return True, state.message
    deleted_at = parse_rfc3339(obj["metadata"].get("deletionTimestamp")) or time.time()
    if time.time() - deleted_at > spec.recovery.timeout_seconds:
        await lock.release(deps.kube, ns, w.obj)
        await deps.kube.emit_event(
            w.obj,
            "Warning",
            "RestoreTimedOut",
            f"gave up restoring after {spec.recovery.timeout_seconds}s: {state.message}; "
            "releasing the finalizer",
        )
        return True, "restore timed out"
    return False, state.message


STEPS: dict[Phase, Step] = {
    Phase.PENDING: _pending,
    Phase.PREFLIGHT: _preflight,
    Phase.INJECTING: _injecting,
    Phase.DETECTING: _detecting,
    Phase.DIAGNOSING: _diagnosing,
    Phase.RECOVERING: _recovering,
}
