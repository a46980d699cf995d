"""The one place a run ends (verdict, Event, metrics, lock release), and the one way a stopped
store is started again, which every ending goes through first."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from controller.coverage import records
from controller.operator import decisions, lock, metrics, operator_pause, outage, partition
from controller.operator.crashpoints import crashpoint
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.model import Verdict
from controller.operator.state import (
    RunSnapshot,
)
from controller.operator.status import StatusWriter

# The outcome of an abort or a deletion whose restore gave up: the one ending that may leave a
# store down, counted for the controller's critical alert (ChaosDemoRestoreGaveUp).
RESTORE_GAVE_UP = "RestoreTimedOut"
log = logging.getLogger(__name__)


async def end_run(
    deps: Deps, w: StatusWriter, run: RunSnapshot | None, outcome: Outcome, **fields: Any
) -> None:
    """The one place a run ends: its verdict and an Event, metrics, the target lock released.
    Whatever way a run ends, a stopped store's image is put back first."""
    if decisions.was_killed(w.status):
        await start_store_again(deps, w)
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
    if run is not None:
        await _record(deps, w, run, outcome.verdict.value)
    crashpoint("finished")
    if run is not None:
        await lock.release(deps.kube, run.target_namespace, w.obj)
    deps.forget(w.uid)


async def _record(deps: Deps, w: StatusWriter, run: RunSnapshot, verdict: str) -> None:
    """The run's outcome per detection source, kept for coverage across drills. A write that
    fails is logged, never in the way of the ending (the status keeps the same facts)."""
    record = records.from_run(w.obj, w.status, run, verdict)
    if record is None:
        return
    try:
        await records.save(deps.db, record)
    except (sqlite3.Error, OSError) as exc:
        log.warning("%s/%s: the drill record for coverage was not written: %s", w.namespace, w.name, exc)


async def start_store_again(deps: Deps, w: StatusWriter) -> str | None:
    """store-outage: swap the original image back; network-partition: delete the NetworkPolicies.
    Exactly once, and record when. Returns what happened, or None when there is nothing (left)
    to put back."""
    victim = w.status.victim
    t = w.status.timeline
    if victim is None or not (victim.outage or victim.partitioned):
        return None
    if t.injecting_at is None or t.restored_at is not None:
        return None
    if t.restoring_at is None:
        t = t.model_copy(update={"restoring_at": time.time()})
        await w.patch(timeline=t)
        crashpoint("image-restoring" if victim.outage else "policy-deleting")
    if victim.partitioned:
        return await _heal(deps, w)
    swap = await outage.swap_victim(deps.kube, victim, back=True)
    crashpoint("image-restored")
    now = time.time()
    # 'already': the swap back was sent before a crash, right after restoringAt was written.
    restored_at = now if swap.outcome in ("swapped", "gone") else (t.restoring_at or now)
    message = f"store {victim.store_id} started again: {swap.detail}"
    if victim.paused_cluster:
        # After the image: resumed first, the operator would have put it back itself, untimed.
        resumed = await operator_pause.resume(deps.kube, victim.namespace, victim.paused_cluster, w.uid)
        crashpoint("operator-resumed")
        if resumed == "resumed":
            message += f"; tidb-operator v2's Cluster {victim.paused_cluster} reconciles again"
    await w.patch(timeline=t.model_copy(update={"restored_at": restored_at}))
    await deps.kube.emit_event(w.obj, "Normal", "StoreStarted", message)
    return message


async def _heal(deps: Deps, w: StatusWriter) -> str:
    """network-partition: delete each victim's NetworkPolicy (the very object this drill made:
    its label, and its uid as the delete's precondition). restoredAt is when the last went."""
    t = w.status.timeline
    deleted: list[str] = []
    for v in w.status.all_victims:
        name = v.partition_policy or ""
        found = await deps.kube.get_network_policy(v.namespace, name)
        if found is None or not partition.made_by(found, w.uid):
            continue  # gone already, or never made: nothing of ours to delete
        if await deps.kube.delete_network_policy(v.namespace, name, found["metadata"]["uid"]):
            deleted.append(name)
    crashpoint("policy-deleted")
    now = time.time()
    # None deleted now: an attempt before a crash did, right after restoringAt was written.
    restored_at = now if deleted else (t.restoring_at or now)
    await w.patch(timeline=t.model_copy(update={"restored_at": restored_at}))
    pods = ", ".join(v.pod for v in w.status.all_victims)
    message = f"network healed for {pods}: " + (
        f"deleted NetworkPolicy {', '.join(deleted)}" if deleted else "its NetworkPolicy was gone already"
    )
    await deps.kube.emit_event(w.obj, "Normal", "NetworkHealed", message)
    return message
