"""A run's start: a new run when the spec changed after the last one ended; its spec validated,
admitted (allow-lists, the target's consent) and pinned in status before anything else happens."""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from controller.operator import admission, decisions, tidb_cluster
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.ending import end_run
from controller.operator.errors import field_of
from controller.operator.model import HISTORY_LIMIT, TERMINAL_PHASES, DrillSpec, Phase, Verdict
from controller.operator.state import (
    RunSnapshot,
    Timeline,
)
from controller.operator.status import StatusWriter


async def current_run(deps: Deps, w: StatusWriter) -> RunSnapshot | None:
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
    target_namespace = spec.target_namespace(w.namespace)
    # Before any Lease or request: an untrusted namespace must not hold another's Lease, nor
    # make the controller call an address of its choosing.
    refusal = admission.spec_refusal(spec, deps.config) or await admission.trust_refusal(
        deps.kube, target_namespace, w.namespace, deps.config
    )
    if refusal is None and spec.target.tidb_cluster:
        # Read only in a namespace the drill may target; the derived PD address meets the same
        # allow-list as one written out.
        derived = await tidb_cluster.resolve(deps.kube, spec.target, target_namespace)
        if isinstance(derived, tidb_cluster.TidbClusterRefusal):
            refusal = admission.Refusal(derived.reason, derived.message)
        else:
            spec = spec.model_copy(update={"target": derived})
            refusal = admission.spec_refusal(spec, deps.config)
    if refusal is not None:
        await end_run(deps, w, None, Outcome(Phase.FAILED, Verdict.ERROR, refusal.reason, refusal.message))
        return None
    pd_address = spec.target.pd_address or deps.config.pd_address
    sources = spec.detection.resolved(
        prometheus_url=deps.config.prometheus_url,
        alertmanager_url=deps.config.alertmanager_url,
        receiver=deps.alerting.notifications is not None,
    )
    spec = spec.model_copy(update={"detection": spec.detection.model_copy(update={"sources": sources})})
    tls = spec.target.tls
    if tls is not None and not pd_address.startswith("https://"):
        message = f"target.tls is set but PD's address {pd_address} is not https:// (set target.pdAddress)"
        await end_run(deps, w, None, Outcome(Phase.FAILED, Verdict.ERROR, "InvalidSpec", message))
        return None
    run = RunSnapshot(
        generation=generation,
        spec=spec.model_dump(by_alias=True, mode="json"),
        targetNamespace=target_namespace,
        pdAddress=pd_address,
        tlsSecret=f"{target_namespace}/{tls.secret_name}" if tls else "",
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
