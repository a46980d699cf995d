"""A drill's state machine.

Read top to bottom:

1. ``advance`` is the entry point (kopf's timer and event reaction call it). It takes the drill's
   guard, so one drill is never stepped twice at once nor stepped while it is torn down.
2. A *run* starts when a drill is new or its spec changed after the last run ended: the spec, the
   target namespace, PD's address and the cluster's ticket name are pinned in ``status.run``.
   Every step of that run reads the pin, never the live spec (except ``abort``, the one live
   control), so an edit mid-run becomes the next run.
3. The steps, one per phase, each read the status that they (or a crashed predecessor) wrote, do
   one thing, and record it before the next: the victim is written before the delete, the delete
   carries a uid precondition, and a repeated step finds its work already done.
4. From the kill on, every step first samples recovery (``_sample``) and records each moment the
   first time it holds; the diagnosis runs in a task of its own, so nothing waits on it.
5. Errors: a permanent one (``errors.PermanentError``) ends the run with verdict Error; any other
   is retried within seconds, and no run outlives its own deadline.
6. ``end_run`` is the one place a run ends: verdict, Event, metrics, lock release.
7. ``finalize`` (deletion) and an abort share ``_restore``, with recovery's "whole again" test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from controller.diagnosis.grading import grade
from controller.diagnosis.inputs import DrillRecord
from controller.diagnosis.schema import DiagnosisOutput
from controller.diagnosis.service import diagnose_ticket
from controller.operator import admission, clocks, decisions, impact, lock, metrics, outage
from controller.operator.clients import ClientCache
from controller.operator.config import OperatorConfig
from controller.operator.crashpoints import crashpoint
from controller.operator.decisions import Outcome, RecoveryObservation
from controller.operator.errors import PermanentError, classify, field_of, using
from controller.operator.evidence import gather
from controller.operator.kube import Kube
from controller.operator.model import FINALIZER, HISTORY_LIMIT, TERMINAL_PHASES, DrillSpec, Phase, Verdict
from controller.operator.preflight import Preflight, run_preflight
from controller.operator.recovery import observe_all, saved_manifest
from controller.operator.sources import AlertingClients, watch_sources
from controller.operator.state import (
    DetectionStatus,
    DiagnosisSummary,
    Impact,
    Incident,
    RunSnapshot,
    SourceStatus,
    Timeline,
    Victim,
)
from controller.operator.status import StatusWriter, stop_requested
from controller.pd import PDClient
from controller.pd.client import PDUnavailable, cluster_name
from controller.pd.models import pod_of_address
from controller.prom import PrometheusClient
from controller.tickets import TicketDB
from controller.timefmt import parse_optional_rfc3339

log = logging.getLogger(__name__)
MAX_STEPS_PER_CALL = 12
# The outcome of an abort or a deletion whose restore gave up: the one ending that may leave a
# store down, counted for the controller's critical alert (ChaosDemoRestoreGaveUp).
RESTORE_GAVE_UP = "RestoreTimedOut"
# Preflight refusals that a drill queued behind another one waits out rather than fails on.
SETTLING_REASONS = frozenset({"OpenTicket", "StoreNotUp"})
WAIT_RECHECK_SECONDS = 2.0
PD_CLIENTS_KEPT = 32


@dataclass
class Retry:
    first_failure: float
    attempts: int = 0


@dataclass
class Diagnosed:
    output: DiagnosisOutput
    diagnoser: str
    model: str | None
    fallback_reason: str | None
    blind: bool
    prompt_version: str | None


@dataclass
class Deps:
    kube: Kube
    db: TicketDB
    config: OperatorConfig
    prom: PrometheusClient | None = None
    _pd: ClientCache[PDClient] = field(default_factory=lambda: ClientCache(PDClient, limit=PD_CLIENTS_KEPT))
    alerting: AlertingClients = field(default_factory=AlertingClients)
    # One step or teardown at a time per drill (by uid).
    guards: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Drills that are only waiting (for a lock, for the cluster, for a retry) are looked at again
    # no sooner than this (by uid): hundreds of queued drills must not poll every tick.
    not_before: dict[str, float] = field(default_factory=dict)
    retries: dict[str, Retry] = field(default_factory=dict)
    diagnoses: dict[str, asyncio.Task[Diagnosed]] = field(default_factory=dict)
    # When each recovery moment was last seen not to hold yet (by uid): its lower bound.
    recovery_bounds: dict[str, dict[str, float]] = field(default_factory=dict)
    # When the detection sources were last asked (by uid, monotonic): at most once a second.
    sources_asked: dict[str, float] = field(default_factory=dict)

    def guard(self, uid: str) -> asyncio.Lock:
        return self.guards.setdefault(uid, asyncio.Lock())

    def backoff(self, uid: str, seconds: float) -> None:
        self.not_before[uid] = time.monotonic() + seconds

    def pd(self, address: str) -> PDClient:
        return self._pd.get(admission.normalize_url(address))

    def forget(self, uid: str) -> None:
        """A run ended: drop what was kept in memory for it."""
        self.retries.pop(uid, None)
        self.recovery_bounds.pop(uid, None)
        self.sources_asked.pop(uid, None)
        task = self.diagnoses.pop(uid, None)
        if task is not None and not task.done():
            task.cancel()

    async def aclose(self) -> None:
        for uid in list(self.diagnoses):
            self.forget(uid)
        await self._pd.aclose()
        await self.alerting.aclose()


# -- entry point -------------------------------------------------------------------------------------------
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
        run = await _current_run(deps, w)
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
            await _abort(deps, w, run, spec)
            return
        for _ in range(MAX_STEPS_PER_CALL):
            phase = w.status.phase or Phase.PENDING
            if phase in TERMINAL_PHASES or w.stop_requested:
                break  # a deletion is the finalizer's; an abort is the next call's, from the top
            if await _past_deadline(deps, w, run, spec):
                break
            if not await STEPS[phase](deps, w, w.status.run or run, spec):
                break
        deps.retries.pop(w.uid, None)
    except Exception as exc:
        await _on_error(deps, w, exc)


async def _current_run(deps: Deps, w: StatusWriter) -> RunSnapshot | None:
    """The run to step: the pinned one, or a new one if the spec changed after the last ended."""
    generation = int(w.obj["metadata"].get("generation", 1))
    live = w.obj.get("spec") or {}
    if decisions.next_run_needed(w.status, generation):
        if w.status.phase is not None and live.get("abort") is True:
            # Setting abort on a finished drill starts nothing: acknowledge the edit.
            await w.patch(observedGeneration=generation)
            return None
        await _start_run(w, generation)
    if w.status.run is not None or w.status.phase in TERMINAL_PHASES:
        return w.status.run
    return await _pin_run(deps, w, generation, live)


async def _pin_run(deps: Deps, w: StatusWriter, generation: int, live: dict[str, Any]) -> RunSnapshot | None:
    """Validate the spec and pin what the run will use. Asking PD for the cluster's id may fail
    for a while (a temporary error, retried): the run is pinned once it answers."""
    try:
        spec = DrillSpec.model_validate(live)
    except ValidationError as exc:
        where, message = field_of(exc)
        await end_run(
            deps, w, None, Outcome(Phase.FAILED, Verdict.ERROR, "InvalidSpec", f"{where}: {message}")
        )
        return None
    pd_address = spec.target.pd_address or deps.config.pd_address
    target_namespace = spec.target_namespace(w.namespace)
    # Before any Lease or request: an untrusted namespace must not hold another's Lease, nor
    # make the controller call an address of its choosing.
    refusal = admission.spec_refusal(spec, deps.config) or await admission.trust_refusal(
        deps.kube, target_namespace, w.namespace, deps.config
    )
    if refusal is not None:
        await end_run(deps, w, None, Outcome(Phase.FAILED, Verdict.ERROR, refusal.reason, refusal.message))
        return None
    sources = spec.detection.resolved(
        prometheus_url=deps.config.prometheus_url, alertmanager_url=deps.config.alertmanager_url
    )
    spec = spec.model_copy(update={"detection": spec.detection.model_copy(update={"sources": sources})})
    run = RunSnapshot(
        generation=generation,
        spec=spec.model_dump(by_alias=True, mode="json"),
        targetNamespace=target_namespace,
        pdAddress=pd_address,
    )
    await w.patch(run=run)
    return run


async def _start_run(w: StatusWriter, generation: int) -> None:
    history = w.status.history
    if w.status.phase is not None:
        history = [w.status.summary(), *history][:HISTORY_LIMIT]
    # A fresh run replaces the whole timeline and run: null them first so the merge drops old keys.
    await w.patch(timeline=None, run=None, queuedAt=None)
    await w.transition(
        Phase.PENDING,
        "Accepted",
        f"drill accepted (generation {generation})",
        observedGeneration=generation,
        verdict=None,
        timeline=Timeline(startedAt=time.time()),
        conditions=[],
        victim=None,
        victims=None,
        incident=None,
        detection=None,
        safetyAbort=None,
        diagnosis=None,
        metrics=None,
        impact=None,
        history=history,
    )


async def end_run(
    deps: Deps, w: StatusWriter, run: RunSnapshot | None, outcome: Outcome, **fields: Any
) -> None:
    """The one place a run ends: its verdict and an Event, metrics, the target lock released.
    Whatever way a run ends, a stopped store's image is put back first."""
    if decisions.was_killed(w.status):
        await _start_store_again(deps, w)
    timeline = fields.pop("timeline", None) or w.status.timeline
    timeline = timeline.model_copy(update={"completed_at": time.time()})
    await w.transition(
        outcome.phase,
        outcome.reason,
        outcome.message,
        event_type="Normal" if outcome.verdict in (Verdict.PASS, None) else "Warning",
        verdict=outcome.verdict.value,
        timeline=timeline,
        **fields,
    )
    cluster = metrics.cluster_label(run.ticket_cluster if run else None)
    metrics.DRILLS.labels(outcome.verdict.value, cluster).inc()
    if outcome.reason == RESTORE_GAVE_UP:
        metrics.RESTORES_GAVE_UP.labels(cluster).inc()
    metrics.drill_inactive(w.namespace, w.name)
    crashpoint("finished")
    if run is not None:
        await lock.release(deps.kube, run.target_namespace, w.obj)
    deps.forget(w.uid)


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


# -- before the kill ---------------------------------------------------------------------------------------
async def _pending(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    ns = run.target_namespace
    try:
        with using("spec.target.namespace"):
            acquired, holder = await lock.acquire(deps.kube, ns, w.obj, decisions.lease_seconds(spec))
    except ApiException as exc:
        if exc.status == 404:  # the Lease cannot be created: the namespace is not there
            raise PermanentError(
                "TargetNamespaceNotFound", "spec.target.namespace", f"namespace {ns!r} does not exist"
            ) from exc
        raise
    if not acquired:
        deps.backoff(w.uid, WAIT_RECHECK_SECONDS)
        message = f"another drill is running on namespace {ns} ({holder}); waiting for it to finish"
        if w.status.reason != "WaitingForTarget":
            timeline = w.status.timeline.model_copy(
                update={"queued_at": w.status.timeline.queued_at or time.time()}
            )
            await w.patch(reason="WaitingForTarget", message=message, timeline=timeline)
            await deps.kube.emit_event(w.obj, "Normal", "WaitingForTarget", message)
        return False
    crashpoint("lock-acquired")
    await w.transition(
        Phase.PREFLIGHT,
        "TargetLocked",
        f"running preflight on namespace {ns}",
        timeline=w.status.timeline.model_copy(update={"locked_at": time.time()}),
    )
    return True


async def _preflight(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    ns = run.target_namespace
    pd = deps.pd(run.pd_address)
    if not run.ticket_cluster:
        # The cluster's identity (PD's cluster id) is pinned at the first preflight PD answers;
        # while it does not, preflight's own checks (namespace first) still run and refuse.
        try:
            with using("spec.target.pdAddress"):
                run = run.model_copy(update={"ticket_cluster": cluster_name(await pd.cluster_id())})
            await w.patch(run=run)
        except PDUnavailable:
            pass
    result = await run_preflight(
        kube=deps.kube,
        spec=spec,
        target_namespace=ns,
        source_namespace=w.namespace,
        allowed_namespaces=deps.config.allowed_namespaces,
        pd=pd,
        db=deps.db,
        cluster=run.ticket_cluster,
        seed=f"{w.uid}/{run.generation}",
    )
    if result.ok and not run.ticket_cluster:
        raise PDUnavailable(run.pd_address, "PD did not say which cluster it is (/cluster)")
    queued_at = w.status.timeline.queued_at
    settling = not result.ok and result.reason in SETTLING_REASONS
    if (
        settling
        and queued_at is None
        and await lock.recently_finished_elsewhere(deps.kube, ns, w.obj, spec.recovery.timeout_seconds)
    ):
        queued_at = time.time()  # right behind another drill: as good as queued
        await w.patch(timeline=w.status.timeline.model_copy(update={"queued_at": queued_at}))
    if settling and queued_at is not None and time.time() - queued_at < spec.recovery.timeout_seconds:
        # Queued behind another drill on this target: its ticket is still open or its store
        # is coming back. Hold the lock and wait for the cluster to settle instead of failing.
        deps.backoff(w.uid, WAIT_RECHECK_SECONDS)
        if w.status.reason != "WaitingForHealthyCluster":
            await w.patch(reason="WaitingForHealthyCluster", message=result.message)
        return False
    if not result.ok:
        return await _refused(deps, w, run, result.reason, result.message)
    with using("spec.target.pdAddress"):
        skewed = clocks.skew_refusal(await clocks.clock_readings(pd, deps.prom), deps.config.max_clock_skew)
    if skewed is not None:
        return await _refused(deps, w, run, "ClockSkew", skewed)
    names = [p.metadata.name for p in result.candidates]
    chosen = result.chosen or [
        decisions.choose_victim(names, spec.target.pod, seed=f"{w.uid}/{run.generation}")
    ]
    victims = [_victim_record(deps, result, ns, name, spec.fault.action) for name in chosen]
    victim = victims[0]
    if spec.fault.action == "store-outage":
        pod = next(p for p in result.candidates if p.metadata.name == victim.pod)
        refusal = outage.refusal(pod, spec.fault.pause_image)
        if refusal is not None:
            return await _refused(deps, w, run, refusal.reason, refusal.message)
        # Saved before the swap: whatever happens next, the original image is known.
        victim = victim.model_copy(update=outage.victim_fields(pod, spec.fault.pause_image))
    who = " and ".join(f"{ns}/{v.pod} ({_what(v)})" for v in victims)
    selected = f"selected {who} among {len(names)} candidate(s)"
    several: dict[str, Any] = {"victims": victims} if len(victims) > 1 else {}
    if spec.safety.dry_run:
        await end_run(
            deps,
            w,
            run,
            Outcome(
                Phase.COMPLETED,
                Verdict.PASS,
                "DryRun",
                f"dry run: preflight passed; would {'stop' if victim.outage else 'kill'} {who}; nothing was touched",
            ),
            victim=victim,
            conditions=w.condition("Selected", True, "DryRun", selected),
            **several,
        )
        return False
    await w.transition(
        Phase.INJECTING,
        "VictimSelected",
        selected,
        victim=victim,
        timeline=w.status.timeline.model_copy(update={"injecting_at": time.time()}),
        conditions=w.condition("Selected", True, "VictimSelected", selected),
        **several,
    )
    crashpoint("victim-persisted")
    return True


async def _refused(deps: Deps, w: StatusWriter, run: RunSnapshot, reason: str, message: str) -> bool:
    """Preflight said no: the run ends with Error, nothing touched."""
    await end_run(
        deps,
        w,
        run,
        Outcome(Phase.FAILED, Verdict.ERROR, reason, f"preflight refused: {message}"),
        conditions=w.condition("Selected", False, reason, message),
    )
    return False


def _victim_record(deps: Deps, result: Preflight, namespace: str, name: str, action: str) -> Victim:
    """What the run keeps about one victim, written before anything is touched."""
    pod = next(p for p in result.candidates if p.metadata.name == name)
    if action == "pd-leader-kill":
        return Victim(
            namespace=namespace, pod=name, uid=pod.metadata.uid, node=pod.spec.node_name, pdMember=name
        )
    store = next(s for s in result.stores if pod_of_address(s.store.address) == (name, namespace))
    return Victim(
        namespace=namespace,
        pod=name,
        uid=pod.metadata.uid,
        node=pod.spec.node_name,
        storeId=store.id,
        storeAddress=store.store.address,
        statusAddress=store.store.status_address or None,
        leadersBefore=store.status.leader_count,
        manifest=saved_manifest(deps.kube.api, pod),
    )


async def _still_wanted(deps: Deps, w: StatusWriter) -> bool:
    """Right before a destructive call: does the live object still want it?

    The object is read afresh, and a no-op status write carrying its resourceVersion as the API
    server's precondition proves nothing changed since (a deletion or an abort changes it:
    409). What the call is about to do was recorded before (victim and injectingAt, written at
    preflight), so a teardown that starts after this point knows what to put back."""
    live = await deps.kube.get_chaosdemo(w.namespace, w.name)
    if live is None or live["metadata"].get("uid") != w.uid or stop_requested(live):
        return False
    timeline = w.status.timeline
    if timeline.injection_sent_at is None:
        timeline = timeline.model_copy(update={"injection_sent_at": time.time()})
    try:
        await w.patch(resource_version=live["metadata"].get("resourceVersion"), timeline=timeline)
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return not w.stop_requested


async def _injecting(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    # An earlier attempt (before a crash) may have sent the delete: then a pod found gone or
    # replaced went by our hand. Known only from the record, read before this attempt's own.
    resumed = w.status.timeline.injection_sent_at is not None
    if not await _still_wanted(deps, w):
        return False  # the finalizer or the abort takes it from here
    victim = _victim(w)
    if victim.outage:
        return await _stop_store(deps, w, run, spec, victim)
    victims = w.status.all_victims
    grace = spec.fault.grace_period_seconds

    async def delete(v: Victim) -> tuple[str, float]:
        return await deps.kube.delete_pod(v.namespace, v.pod, v.uid, grace), time.time()

    with using("spec.target"):
        # Several victims go at once, as a zone or a rack does; each delete names its pod's uid.
        results = await asyncio.gather(*(delete(v) for v in victims))
    crashpoint("pod-deleted")
    now = time.time()
    outcomes = [outcome if outcome == "deleted" or not resumed else "gone" for outcome, _ in results]
    deleted_at = [at for outcome, at in results if outcome == "deleted"]
    if not deleted_at and not resumed:
        # Gone or replaced between preflight and now, by someone else: nothing of ours was
        # touched, and someone else's restart is not ours to time.
        changed = ", ".join(f"{v.pod} ({o})" for v, o in zip(victims, outcomes, strict=True))
        detail = f"pod(s) no longer the ones chosen (uid precondition): {changed}; nothing deleted"
        await end_run(
            deps,
            w,
            run,
            Outcome(Phase.FAILED, Verdict.ERROR, "VictimChanged", detail),
            conditions=w.condition("Injected", False, "VictimChanged", detail),
        )
        return False
    # The kill is the first delete done: a monitor may see that store go before the others.
    # 'gone' after a crash: the earlier attempt deleted it right after injectionSentAt was
    # written, so that is the best record of the kill time.
    deleted = bool(deleted_at)
    sent_at = w.status.timeline.injection_sent_at or w.status.timeline.injecting_at or now
    injected_at = min(deleted_at) if deleted_at else sent_at
    created = parse_optional_rfc3339(w.obj["metadata"].get("creationTimestamp"))
    if created and deleted:
        metrics.REACTION.observe(max(0.0, injected_at - created))
    message = "; ".join(
        f"deleted pod {v.pod} (uid {v.uid[:8]}, grace {grace}s)"
        if outcome == "deleted"
        else f"pod {v.pod} (uid {v.uid[:8]}) was already gone"
        if outcome == "gone"
        else f"pod {v.pod} was replaced by someone else before our delete; not touched"
        for v, outcome in zip(victims, outcomes, strict=True)
    )
    reason = "PDLeaderKilled" if victim.pd_member else "PodKilled"
    await _record_injected(w, spec, injected_at, reason, message)
    return True


async def _stop_store(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec, victim: Victim) -> bool:
    """store-outage: swap the TiKV container's image for the pause image (at most once)."""
    with using("spec.target"):
        swap = await outage.swap_victim(deps.kube, victim, back=False)
    crashpoint("image-swapped")
    if swap.outcome in ("gone", "changed"):
        # The pod changed between preflight and now: nothing of ours was touched.
        await end_run(
            deps,
            w,
            run,
            Outcome(Phase.FAILED, Verdict.ERROR, "VictimChanged", f"store not stopped: {swap.detail}"),
            conditions=w.condition("Injected", False, "VictimChanged", swap.detail),
        )
        return False
    now = time.time()
    # 'already': an attempt before a crash swapped it, right after injectionSentAt was written.
    t = w.status.timeline
    injected_at = now if swap.outcome == "swapped" else (t.injection_sent_at or t.injecting_at or now)
    message = (
        f"stopped store {victim.store_id}: container {victim.container} of {victim.pod} runs "
        f"{victim.pause_image} instead of {victim.original_image} for {spec.fault.duration_seconds}s"
    )
    await _record_injected(w, spec, injected_at, "StoreStopped", message)
    return True


async def _record_injected(
    w: StatusWriter, spec: DrillSpec, injected_at: float, reason: str, message: str
) -> None:
    await w.transition(
        Phase.DETECTING,
        reason,
        message,
        timeline=w.status.timeline.model_copy(update={"injected_at": injected_at}),
        detection=DetectionStatus(
            sources=[
                SourceStatus(name=s.label, type=s.type, required=s.required) for s in spec.detection.sources
            ]
        ),
        conditions=w.condition("Injected", True, reason, message),
    )
    crashpoint("injected-recorded")


async def _start_store_again(deps: Deps, w: StatusWriter) -> str | None:
    """store-outage: swap the original image back, exactly once, and record when. Returns what
    happened, or None when there is nothing (left) to put back."""
    victim = w.status.victim
    t = w.status.timeline
    if victim is None or not victim.outage or t.injecting_at is None or t.restored_at is not None:
        return None
    if t.restoring_at is None:
        t = t.model_copy(update={"restoring_at": time.time()})
        await w.patch(timeline=t)
        crashpoint("image-restoring")
    swap = await outage.swap_victim(deps.kube, victim, back=True)
    crashpoint("image-restored")
    now = time.time()
    # 'already': the swap back was sent before a crash, right after restoringAt was written.
    restored_at = now if swap.outcome in ("swapped", "gone") else (t.restoring_at or now)
    await w.patch(timeline=t.model_copy(update={"restored_at": restored_at}))
    message = f"store {victim.store_id} started again: {swap.detail}"
    await deps.kube.emit_event(w.obj, "Normal", "StoreStarted", message)
    return message


def _what(victim: Victim) -> str:
    return f"PD leader {victim.pd_member}" if victim.pd_member else f"store {victim.store_id}"


def _leaders_before(victims: list[Victim]) -> int | None:
    counts = [v.leaders_before for v in victims]
    return None if any(c is None for c in counts) else sum(c or 0 for c in counts)


def _victim(w: StatusWriter) -> Victim:
    if w.status.victim is None:
        raise PermanentError("VictimLost", "status.victim", "the run's victim record is missing")
    return w.status.victim


# -- after the kill: sample recovery on every step ---------------------------------------------------------
_MOMENTS = (
    "pod_ready_at",
    "pd_leader_elected_at",
    "pd_member_healthy_at",
    "store_up_at",
    "regions_healthy_at",
    "recovered_at",
    "leaders_balanced_at",
    "leaders_elected_at",
)


async def _sample(deps: Deps, w: StatusWriter, run: RunSnapshot) -> RecoveryObservation:
    """Look at the victims and record each recovery moment the first time it holds."""
    _victim(w)
    before = w.status.timeline
    injected_at = before.injected_at or time.time()
    victims = w.status.all_victims
    obs = await observe_all(deps.kube, deps.pd(run.pd_address), victims, injected_at, before.restored_at)
    bounds = deps.recovery_bounds.setdefault(w.uid, {})
    after = decisions.record_recovery(
        before, obs, not_before=injected_at, bounds=bounds, leaders_before=_leaders_before(victims)
    )
    for moment in _MOMENTS:
        if getattr(after, moment) is None:
            bounds[moment] = obs.seen_at  # not yet at this look: the moment is later
    if after != before:
        await w.patch(timeline=after, metrics=decisions.recovery_metrics(w.status.metrics, after))
        if before.pod_ready_at is None and after.pod_ready_at is not None:
            crashpoint("pod-ready")
    return obs


async def _look_after_kill(
    deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec
) -> tuple[RecoveryObservation, bool] | None:
    """What every step after the kill does first: sample recovery, look at the detection
    sources, and check that nothing beyond the drill's own fault went wrong. None: the drill
    must stop (a safety abort was recorded; the next step restores)."""
    t = w.status.timeline
    if t.injected_at is not None and time.time() >= t.injected_at + spec.fault.outage_seconds:
        await _start_store_again(deps, w)  # store-outage: its time is up
    obs = await _sample(deps, w, run)
    problem = obs.safety_problem()
    if problem is not None:
        await w.patch(
            safetyAbort=problem,
            timeline=w.status.timeline.model_copy(update={"abort_requested_at": time.time()}),
            reason="Restoring",
            message=f"aborting for safety: {problem}",
        )
        await deps.kube.emit_event(w.obj, "Warning", "SafetyAbort", f"aborting for safety: {problem}")
        deps.backoff(w.uid, 0.0)
        return None
    watching = await _watch_sources(deps, w, spec)
    return obs, watching


async def _detecting(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    if await _look_after_kill(deps, w, run, spec) is None:
        return False
    victims = w.status.all_victims
    injected_at = w.status.timeline.injected_at or time.time()
    # Only a ticket decided after the kill detected it (one opened before is an earlier incident,
    # and preflight refused to start while one was open): no slack, so no TTD below zero to
    # hide. With several victims, the first ticket about any of them detected the fault.
    since = injected_at
    tickets = [
        t
        for v in victims
        for t in (
            await deps.db.find_for_store(run.ticket_cluster, v.store_id, since=since)
            if v.store_id is not None
            else await deps.db.find_for_subject(run.ticket_cluster, "pd", since=since)
        )
    ]
    if tickets:
        ticket = min(tickets, key=lambda t: t.opened_at)
        crashpoint("ticket-found")
        ttd = decisions.seconds_between(injected_at, ticket.opened_at)
        metrics.TIME_TO_DETECT.labels(metrics.cluster_label(run.ticket_cluster)).observe(ttd)
        within = ttd <= spec.detection.expect_within_seconds
        message = (
            f"ticket #{ticket.id} ({ticket.invariant}) opened {ttd:.1f}s after the kill; SLO "
            f"{spec.detection.expect_within_seconds}s {'met' if within else 'MISSED'}"
        )
        await w.transition(
            Phase.DIAGNOSING if spec.diagnosis.enabled else Phase.RECOVERING,
            "Detected",
            message,
            timeline=w.status.timeline.model_copy(update={"detected_at": ticket.opened_at}),
            incident=Incident(
                ticketId=ticket.id,
                invariant=ticket.invariant,
                severity=ticket.severity.value,
                detectedBy="monitor",
                signals=ticket.signals,
            ),
            metrics=w.status.metrics.model_copy(
                update={
                    "time_to_detect_seconds": ttd,
                    "time_to_detect": decisions.seconds_text(ttd),
                }
            ),
            conditions=w.condition("Detected", True, "TicketOpened" if within else "DetectedLate", message),
        )
        return True
    if time.time() - injected_at > spec.detection.timeout_seconds:
        metrics.DETECTION_MISSES.labels(metrics.cluster_label(run.ticket_cluster)).inc()
        about = ", ".join(f"store {v.store_id}" if v.store_id is not None else "PD" for v in victims)
        message = f"no ticket about {about} within {spec.detection.timeout_seconds}s of the kill"
        await w.transition(
            Phase.RECOVERING,
            "Undetected",
            message,
            event_type="Warning",
            conditions=w.condition("Detected", False, "DetectionTimeout", message),
        )
        return True
    return False


def _corroborated(ticket: Any) -> bool:
    """Two different signals (say: unreachable, then restarted) tell a story; one signal seen by
    two sources only confirms the first line of it."""
    return len(set(ticket.signals)) >= 2


async def _diagnosing(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    if await _look_after_kill(deps, w, run, spec) is None:
        return False
    assert w.status.incident is not None
    ticket_id = w.status.incident.ticket_id
    detected_at = w.status.timeline.detected_at or 0.0
    task = deps.diagnoses.get(w.uid)
    if task is None:
        ticket = await deps.db.get(ticket_id)
        if (
            ticket is not None
            and not _corroborated(ticket)
            and time.time() - detected_at < deps.config.diagnosis_settle
        ):
            # The first signal of an incident rarely explains it: give the monitor a few cycles
            # to add corroborating evidence (the restart, PD's view) before judging.
            return False
        task = asyncio.create_task(_diagnose(deps, w, run, spec, ticket_id, detected_at))
        deps.diagnoses[w.uid] = task
    if not task.done():
        if time.time() - detected_at <= decisions.DIAGNOSIS_BUDGET:
            return False
        task.cancel()
    deps.diagnoses.pop(w.uid, None)
    try:
        diagnosed = task.result()
    except (
        Exception,
        asyncio.CancelledError,
    ) as exc:  # a diagnosis problem must not cost the drill its measurement
        reason = "timed out" if isinstance(exc, asyncio.CancelledError) else f"{type(exc).__name__}: {exc}"
        log.warning("diagnosis of ticket %s failed: %s", ticket_id, reason)
        message = f"diagnosis failed: {reason}"
        await w.transition(
            Phase.RECOVERING,
            "DiagnosisFailed",
            message,
            event_type="Warning",
            conditions=w.condition("Diagnosed", False, "DiagnosisFailed", message),
        )
        return True
    victim, *others = w.status.all_victims or [_victim(w)]
    g = grade(
        diagnosed.output,
        action=spec.fault.action,
        pod=victim.pod,
        store_id=victim.store_id,
        others=tuple((v.pod, v.store_id) for v in others if v.store_id is not None),
    )
    fallback = f" [fallback: {diagnosed.fallback_reason}]" if diagnosed.fallback_reason else ""
    output = diagnosed.output
    message = (
        f"{output.root_cause_category.value} ({output.confidence.value} confidence) by {diagnosed.diagnoser}"
        f"{fallback}; matches the injected fault: {g.matches}"
    )
    await w.transition(
        Phase.RECOVERING,
        "Diagnosed",
        message,
        timeline=w.status.timeline.model_copy(update={"diagnosed_at": time.time()}),
        diagnosis=DiagnosisSummary(
            summary=output.summary[:500],
            rootCauseCategory=output.root_cause_category.value,
            severity=output.severity.value,
            confidence=output.confidence.value,
            diagnoser=diagnosed.diagnoser,
            model=diagnosed.model,
            blind=diagnosed.blind,
            promptVersion=diagnosed.prompt_version,
            matchesInjectedFault=g.matches,
            gradeReason=g.reason,
            fallbackReason=diagnosed.fallback_reason,
        ),
        conditions=w.condition("Diagnosed", True, "Diagnosed" if g.matches else "DiagnosisMismatch", message),
    )
    return True


async def _diagnose(
    deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec, ticket_id: int, detected_at: float
) -> Diagnosed:
    """The diagnosis, in a task of its own; stored on the ticket, so a restarted controller
    reuses it rather than pay (and wait) twice."""
    victim = _victim(w)
    ticket = await deps.db.get(ticket_id)
    if ticket is None:
        raise LookupError(f"ticket #{ticket_id} is no longer in the ticket store")
    if ticket.diagnosis and (ticket.diagnosed_at or 0) >= detected_at:
        meta = ticket.diagnosis_meta or {}
        return Diagnosed(
            DiagnosisOutput.model_validate(ticket.diagnosis),
            ticket.diagnoser or "",
            ticket.model,
            meta.get("fallback_reason"),
            bool(meta.get("blind", spec.diagnosis.blind)),
            ticket.prompt_version,
        )
    blind = spec.diagnosis.blind
    # Blind: the diagnoser never holds the record, so no later layer can leak it into the prompt.
    record = (
        None
        if blind
        else DrillRecord(
            action=spec.fault.action,
            pod=victim.pod,
            namespace=victim.namespace,
            store_id=victim.store_id,
            injected_at=w.status.timeline.injected_at or 0.0,
        )
    )
    data = await gather(
        ticket=ticket,
        db=deps.db,
        pd=deps.pd(run.pd_address),
        prom=deps.prom,
        kube=deps.kube,
        namespace=victim.namespace,
        pod=victim.pod,
        pod_selector=spec.target.selector.to_label_selector(),
        drill=record,
        cluster=run.ticket_cluster,
        tikv_job=deps.config.tikv_job,
    )
    result = await diagnose_ticket(
        deps.db,
        data,
        provider=spec.diagnosis.provider,
        model=spec.diagnosis.model,
        blind=blind,
    )
    crashpoint("diagnosed")
    return Diagnosed(
        result.output,
        result.diagnoser,
        result.model,
        result.fallback_reason,
        blind,
        result.bundle.prompt_version,
    )


async def _recovering(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    look = await _look_after_kill(deps, w, run, spec)
    if look is None:
        return False
    obs, watching = look
    t = w.status.timeline
    injected_at = t.injected_at or time.time()
    now = time.time()
    if t.recovered_at is not None:
        waited = now - t.recovered_at
        if (
            t.leaders_balanced_at is None
            and not _victim(w).pd_member  # a PD member leads no regions
            and waited < spec.recovery.wait_for_leaders_seconds
        ):
            return False  # whole again; still sampling for PD to move leaders back
        if watching:
            return False  # whole again; a detection source has not answered yet
        ttr = w.status.metrics.time_to_recover_seconds or 0.0
        metrics.TIME_TO_RECOVER.labels(metrics.cluster_label(run.ticket_cluster)).observe(ttr)
        if _victim(w).pd_member:
            conditions = w.condition(
                "Recovered", True, "PDWhole", f"PD whole again {ttr:.1f}s after the kill: {obs.describe()}"
            )
        else:
            leaders = (
                "leaders back"
                if t.leaders_balanced_at is not None
                else f"leaders not back after {spec.recovery.wait_for_leaders_seconds}s"
            )
            conditions = w.condition(
                "Recovered", True, "StoreWhole", f"store whole again {ttr:.1f}s after the kill; {leaders}"
            )
        await _end_after_kill(deps, w, run, spec, recovered=True, conditions=conditions)
        return False
    # Recovery starts when the fault ends: at the kill, or when a stopped store's image is back.
    recovery_from = t.restored_at if (w.status.victim and w.status.victim.outage) else injected_at
    if recovery_from is not None and now - recovery_from > spec.recovery.timeout_seconds and not watching:
        detail = obs.describe()
        since = "the kill" if recovery_from == injected_at else "the store was started again"
        message = f"not whole again {spec.recovery.timeout_seconds}s after {since}: {detail}"
        conditions = w.condition("Recovered", False, "RecoveryTimeout", message)
        await _end_after_kill(deps, w, run, spec, recovered=False, detail=detail, conditions=conditions)
    return False


async def _end_after_kill(
    deps: Deps,
    w: StatusWriter,
    run: RunSnapshot,
    spec: DrillSpec,
    *,
    recovered: bool,
    detail: str = "",
    **fields: Any,
) -> None:
    """The verdict of a run that killed: detection by every source, recovery, the SLO."""
    sources = w.status.detection.sources if w.status.detection else []
    metrics_now = w.status.metrics
    if sources:
        ttd, _ = decisions.headline_detection(sources)
        metrics_now = metrics_now.model_copy(
            update={"time_to_detect_seconds": ttd, "time_to_detect": decisions.seconds_text(ttd)}
        )
    outcome = decisions.verdict(spec, metrics_now, recovered=recovered, detail=detail, sources=sources)
    drill_impact = await _impact(deps, w)
    breaches = impact.slo_breaches(spec.slo, drill_impact)
    if breaches and outcome.verdict == Verdict.PASS:
        outcome = Outcome(Phase.FAILED, Verdict.FAIL, "SLOBreached", "; ".join(breaches))
    metrics.observe_sources(sources, metrics.cluster_label(run.ticket_cluster))
    await end_run(deps, w, run, outcome, metrics=metrics_now, impact=drill_impact, **fields)


async def _impact(deps: Deps, w: StatusWriter) -> Impact | None:
    """What clients felt, from Prometheus (None without one)."""
    t = w.status.timeline
    if deps.prom is None or t.injected_at is None:
        return None
    measured = await impact.measure(
        deps.prom, deps.config.tikv_job, kill=t.injected_at, recovered=t.recovered_at, until=time.time()
    )
    return impact.with_leaderless(measured, t, _leaders_before(w.status.all_victims))


async def _watch_sources(deps: Deps, w: StatusWriter, spec: DrillSpec) -> bool:
    """Look at every detection source that has not answered and record what each shows, with the
    servers' own times. Returns whether any is still being watched."""
    detection = w.status.detection
    kill = w.status.timeline.injected_at
    if detection is None or kill is None:
        return False
    now = time.time()
    window_over = now - kill > spec.detection.timeout_seconds
    watching = any(s.state == "Watching" for s in detection.sources)
    asked = deps.sources_asked.get(w.uid)
    if watching and not window_over and asked is not None and time.monotonic() - asked < SOURCES_ASKED_EVERY:
        # Detection times come from the servers' own clocks (an alert's activeAt, a ticket's
        # opened_at), so asking less often than each step loses no precision.
        return True
    deps.sources_asked[w.uid] = time.monotonic()
    updated = await watch_sources(
        deps.alerting,
        spec.detection.sources,
        detection.sources,
        victim=_victim(w),
        kill=kill,
        now=now,
        window_over=window_over,
        window_seconds=spec.detection.timeout_seconds,
        incident=w.status.incident,
        timeline=w.status.timeline,
        rules_url=deps.config.prometheus_url,
    )
    if updated != detection.sources:
        await w.patch(detection=DetectionStatus(sources=updated))
    return not window_over and any(s.state != "Detected" for s in updated)


SOURCES_ASKED_EVERY = 1.0  # seconds

STEPS = {
    Phase.PENDING: _pending,
    Phase.PREFLIGHT: _preflight,
    Phase.INJECTING: _injecting,
    Phase.DETECTING: _detecting,
    Phase.DIAGNOSING: _diagnosing,
    Phase.RECOVERING: _recovering,
}


# -- abort and deletion: one teardown ---------------------------------------------------------------------
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
        await _start_store_again(deps, w)
        obs = await observe_all(
            deps.kube,
            deps.pd(run.pd_address),
            w.status.all_victims,
            injected_at,
            w.status.timeline.restored_at,
        )
    except Exception as exc:
        return Restore(False, False, f"cannot check the victim yet: {type(exc).__name__}: {exc}")
    return Restore(obs.whole(injected_at), False, obs.describe())


async def _abort(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> None:
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
