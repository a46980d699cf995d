"""The Diagnosing phase: the diagnosis runs in a task of its own (so recovery is measured
meanwhile), after a few cycles for corroborating evidence; its result is graded against the
injected fault."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controller.diagnosis.grading import grade
from controller.diagnosis.inputs import DrillRecord
from controller.diagnosis.schema import DiagnosisOutput
from controller.diagnosis.service import diagnose_ticket
from controller.operator import decisions
from controller.operator.after_kill import look_after_kill
from controller.operator.crashpoints import crashpoint
from controller.operator.deps import Deps, Diagnosed
from controller.operator.evidence import gather
from controller.operator.model import DrillSpec, Phase
from controller.operator.pd_access import pd_for
from controller.operator.state import (
    DiagnosisSummary,
    RunSnapshot,
)
from controller.operator.status import StatusWriter
from controller.operator.victims import victim_of

log = logging.getLogger(__name__)


def _corroborated(ticket: Any) -> bool:
    """Two different signals (say: unreachable, then restarted) tell a story; one signal seen by
    two sources only confirms the first line of it."""
    return len(set(ticket.signals)) >= 2


async def diagnosing(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    if await look_after_kill(deps, w, run, spec) is None:
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
    victim, *others = w.status.all_victims or [victim_of(w)]
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
    victim = victim_of(w)
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
        pd=await pd_for(deps, run),
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
