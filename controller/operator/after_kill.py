"""The phases after the kill (Detecting, Recovering): every step first samples recovery and the
detection sources, whatever the phase, and records each moment the first time it holds."""

from __future__ import annotations

import time
from typing import Any

from controller.operator import decisions, impact, metrics, probing, recovery_moments, source_access
from controller.operator.crashpoints import crashpoint
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.ending import end_run, start_store_again
from controller.operator.model import DrillSpec, Phase, Verdict
from controller.operator.pd_access import pd_for
from controller.operator.recovery import observe_all
from controller.operator.recovery_moments import RecoveryObservation
from controller.operator.sources import cluster_identity, watch_sources
from controller.operator.state import (
    ClientImpact,
    DetectionStatus,
    Impact,
    Incident,
    RunSnapshot,
)
from controller.operator.status import StatusWriter
from controller.operator.victims import leaders_before, victim_of

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


SOURCES_ASKED_EVERY = 1.0  # seconds


async def _sample(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> RecoveryObservation:
    """Look at the victims and record each recovery moment the first time it holds."""
    victim_of(w)
    before = w.status.timeline
    injected_at = before.injected_at or time.time()
    victims = w.status.all_victims
    obs = await observe_all(deps.kube, await pd_for(deps, run), victims, injected_at, before.restored_at)
    bounds = deps.recovery_bounds.setdefault(w.uid, {})
    fault = spec.fault
    # A partition from PD alone leaves Raft untouched: the victims lose no leaderships.
    raft_intact = fault.action == "network-partition" and "tikv" not in fault.partition.from_
    after = recovery_moments.record_recovery(
        before,
        obs,
        not_before=injected_at,
        bounds=bounds,
        leaders_before=0 if raft_intact else leaders_before(victims),
    )
    for moment in _MOMENTS:
        since = obs.not_yet_since(moment)
        if getattr(after, moment) is None and since is not None:
            bounds[moment] = since  # not yet at this look: the moment is later
    if after != before:
        await w.patch(timeline=after, metrics=recovery_moments.recovery_metrics(w.status.metrics, after))
        if before.pod_ready_at is None and after.pod_ready_at is not None:
            crashpoint("pod-ready")
    return obs


async def look_after_kill(
    deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec
) -> tuple[RecoveryObservation, bool] | None:
    """What every step after the kill does first: sample recovery, look at the detection
    sources, and check that nothing beyond the drill's own fault went wrong. None: the drill
    must stop (a safety abort was recorded; the next step restores)."""
    t = w.status.timeline
    if t.injected_at is not None and time.time() >= t.injected_at + spec.fault.outage_seconds:
        await start_store_again(deps, w)  # store-outage: its time is up
    obs = await _sample(deps, w, run, spec)
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


async def detecting(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    if await look_after_kill(deps, w, run, spec) is None:
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
        ttd = recovery_moments.seconds_between(injected_at, ticket.opened_at)
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
                    "time_to_detect": recovery_moments.seconds_text(ttd),
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


async def recovering(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    look = await look_after_kill(deps, w, run, spec)
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
            and not victim_of(w).pd_member  # a PD member leads no regions
            and waited < spec.recovery.wait_for_leaders_seconds
        ):
            return False  # whole again; still sampling for PD to move leaders back
        if watching:
            return False  # whole again; a detection source has not answered yet
        probe = deps.probes.get(w.uid)
        if (
            probe is not None
            and probe.prober.failing_regions()
            and now - injected_at < spec.recovery.timeout_seconds
        ):
            return False  # whole again, but TiKV's client still meets regions that do not answer
        ttr = w.status.metrics.time_to_recover_seconds or 0.0
        metrics.TIME_TO_RECOVER.labels(metrics.cluster_label(run.ticket_cluster)).observe(ttr)
        if victim_of(w).pd_member:
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
            update={"time_to_detect_seconds": ttd, "time_to_detect": recovery_moments.seconds_text(ttd)}
        )
    outcome = decisions.verdict(spec, metrics_now, recovered=recovered, detail=detail, sources=sources)
    drill_impact = impact.with_traffic_note(await _impact(deps, w), await _client_impact(deps, w, spec))
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
    return impact.with_leaderless(measured, t, leaders_before(w.status.all_victims))


async def _client_impact(deps: Deps, w: StatusWriter, spec: DrillSpec) -> ClientImpact | None:
    """What TiKV's own client met, from the drill's prober (spec.impact.probe)."""
    if not spec.impact.probe.enabled:
        return None
    probe = deps.probes.pop(w.uid, None)
    if probe is None:
        lost = ClientImpact(error=deps.probe_errors.get(w.uid) or probing.LOST)
        prefix = spec.impact.probe.writes
        if prefix is None or w.uid in deps.probe_errors:
            return lost
        run = w.status.run
        if run is None:  # nothing ran, so nothing was written
            return lost
        return lost.model_copy(
            update={"writes": await probing.put_back_after_restart(run.pd_address, prefix)}
        )
    records = await probing.finish(probe)
    return probing.figures(probe, records, w.status.timeline, until=time.time())


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
    victims = w.status.all_victims or [victim_of(w)]
    run = w.status.run
    updated = await watch_sources(
        deps.alerting,
        spec.detection.sources,
        detection.sources,
        victims=victims,
        cluster=cluster_identity(
            victims,
            run.target_namespace if run else victims[0].namespace,
            run.pd_address if run else "",
            tikv_job=deps.config.tikv_job,
            pd_job=deps.config.pd_job,
        ),
        kill=kill,
        now=now,
        window_over=window_over,
        window_seconds=spec.detection.timeout_seconds,
        incident=w.status.incident,
        timeline=w.status.timeline,
        reach=await source_access.reach(deps, run, spec.detection.sources) if run else {},
        rules=deps.prom,
    )
    if updated != detection.sources:
        await w.patch(detection=DetectionStatus(sources=updated))
    return not window_over and any(s.state != "Detected" for s in updated)
