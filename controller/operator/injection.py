"""The one destructive phase (Injecting): the pods deleted or the store stopped, each only
after the live object was read afresh and a claim written with its resourceVersion as the API
server's precondition, so nothing is injected once a deletion or an abort was requested."""

from __future__ import annotations

import asyncio
import time

from kubernetes_asyncio.client.exceptions import ApiException

from controller.client_probe.prober import ProberError
from controller.operator import metrics, operator_pause, outage, partition, probing
from controller.operator.crashpoints import crashpoint, holdpoint
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.ending import end_run
from controller.operator.errors import using
from controller.operator.graceful import ContainerStop, container_stopped
from controller.operator.model import DrillSpec, Phase, Verdict
from controller.operator.pd_access import pd_for
from controller.operator.state import (
    DetectionStatus,
    RunSnapshot,
    SourceStatus,
    Victim,
)
from controller.operator.status import StatusWriter, stop_requested
from controller.operator.victims import victim_of
from controller.timefmt import parse_optional_rfc3339


async def _still_wanted(deps: Deps, w: StatusWriter) -> bool:
    """Right before a destructive call: does the live object still want it?

    The object is read afresh, and the claim (``injectionSentAt``, kept from an earlier attempt)
    is written with its resourceVersion as the API server's precondition: the write proves
    nothing changed since the read (a deletion or an abort changes it: 409, and nothing is
    sent). The victim was recorded at preflight; with the claim, a teardown that starts after
    this point knows the call may have gone out and what to put back."""
    live = await deps.kube.get_chaosdemo(w.namespace, w.name)
    if live is None or live["metadata"].get("uid") != w.uid or stop_requested(live):
        return False
    await holdpoint("claim-read")  # a stop landing here must make the claim's write fail
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


async def _probe_ready(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    """spec.impact.probe: TiKV's client reads from before the kill (its baseline). A prober that
    cannot start does not stop the drill: the status says why it has no client figures."""
    probe = deps.probes.get(w.uid)
    if probe is None and w.uid not in deps.probe_errors:
        try:
            probe = await probing.start(await pd_for(deps, run), run.pd_address, spec.impact.probe)
        except ProberError as exc:
            deps.probe_errors[w.uid] = str(exc)
            await deps.kube.emit_event(w.obj, "Warning", "ProbeUnavailable", str(exc))
            return True
        deps.probes[w.uid] = probe
    if probe is None:
        return True
    left = probing.baseline_left(probe, time.time())
    if left > 0:
        deps.backoff(w.uid, left)
        return False
    return True


async def injecting(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    # An earlier attempt (before a crash) may have sent the delete: then a pod found gone or
    # replaced went by our hand. Known only from the record, read before this attempt's own.
    resumed = w.status.timeline.injection_sent_at is not None
    if spec.impact.probe.enabled and not resumed and not await _probe_ready(deps, w, run, spec):
        return False  # the prober's baseline first
    if not await _still_wanted(deps, w):
        return False  # the finalizer or the abort takes it from here
    await holdpoint("claim-written")  # past the claim, a stop is the teardown's to put right
    victim = victim_of(w)
    if victim.outage:
        return await _stop_store(deps, w, run, spec, victim)
    if victim.partitioned:
        return await _cut_off(deps, w, run, spec)
    victims = w.status.all_victims
    grace = spec.fault.grace_period_seconds

    async def delete(v: Victim) -> tuple[str, float, ContainerStop | None]:
        outcome = await deps.kube.delete_pod(v.namespace, v.pod, v.uid, grace)
        returned = time.time()
        if outcome != "deleted" or grace == 0:
            return outcome, returned, None
        # With a grace period TiKV serves on until its container stops: that is the kill.
        return outcome, returned, await container_stopped(deps.kube, v.namespace, v.pod, v.uid, returned)

    with using("spec.target"):
        # Several victims go at once, as a zone or a rack does; each delete names its pod's uid.
        results = await asyncio.gather(*(delete(v) for v in victims))
    crashpoint("pod-deleted")
    now = time.time()
    outcomes = [outcome if outcome == "deleted" or not resumed else "gone" for outcome, _, _ in results]
    deleted_at = [stop.at if stop else at for outcome, at, stop in results if outcome == "deleted"]
    delete_returned = [at for outcome, at, _ in results if outcome == "deleted"]
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
        metrics.REACTION.observe(max(0.0, min(delete_returned) - created))
    message = "; ".join(
        _deleted_text(v, grace, returned, stop)
        if outcome == "deleted"
        else f"pod {v.pod} (uid {v.uid[:8]}) was already gone"
        if outcome == "gone"
        else f"pod {v.pod} was replaced by someone else before our delete; not touched"
        for v, outcome, (_, returned, stop) in zip(victims, outcomes, results, strict=True)
    )
    reason = "PDLeaderKilled" if victim.pd_member else "PodKilled"
    await _record_injected(w, spec, injected_at, reason, message)
    return True


def _deleted_text(v: Victim, grace: int, returned: float, stop: ContainerStop | None) -> str:
    text = f"deleted pod {v.pod} (uid {v.uid[:8]}, grace {grace}s)"
    if stop is None:
        return text
    return f"{text}; its container stopped {stop.at - returned:+.1f}s after the delete returned ({stop.how})"


async def _stop_store(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec, victim: Victim) -> bool:
    """store-outage: swap the TiKV container's image for the pause image (at most once), with
    tidb-operator v2's reconciliation paused first where it would put the image back."""
    paused = ""
    if victim.paused_cluster:
        with using("spec.target"):
            outcome = await operator_pause.pause(deps.kube, victim.namespace, victim.paused_cluster, w.uid)
        crashpoint("operator-paused")
        if outcome == "gone":
            detail = f"tidb-operator v2's Cluster {victim.namespace}/{victim.paused_cluster} is gone"
            return await _not_stopped(deps, w, run, detail)
        paused = (
            f"; Cluster {victim.paused_cluster} was paused already by its users (left as it is)"
            if outcome == "paused-by-others"
            else f"; tidb-operator v2's Cluster {victim.paused_cluster} paused for the outage"
        )
    with using("spec.target"):
        swap = await outage.swap_victim(deps.kube, victim, back=False)
    crashpoint("image-swapped")
    if swap.outcome in ("gone", "changed"):
        # The pod changed between preflight and now: nothing of ours was touched but the
        # pause, which the ending undoes.
        return await _not_stopped(deps, w, run, swap.detail)
    now = time.time()
    # 'already': an attempt before a crash swapped it, right after injectionSentAt was written.
    t = w.status.timeline
    injected_at = now if swap.outcome == "swapped" else (t.injection_sent_at or t.injecting_at or now)
    message = (
        f"stopped store {victim.store_id}: container {victim.container} of {victim.pod} runs "
        f"{victim.pause_image} instead of {victim.original_image} for {spec.fault.duration_seconds}s{paused}"
    )
    await _record_injected(w, spec, injected_at, "StoreStopped", message)
    return True


async def _cut_off(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    """network-partition: one NetworkPolicy per victim, each created at most once (its name is the
    run's own: one that exists with this drill's label is an earlier attempt's, before a crash)."""
    victims = w.status.all_victims
    created: list[float] = []
    for v in victims:
        with using("spec.target"):
            pod = await deps.kube.get_pod(v.namespace, v.pod)
            existing = await deps.kube.get_network_policy(v.namespace, v.partition_policy or "")
        if existing is not None:
            if not partition.made_by(existing, w.uid):
                detail = (
                    f"a NetworkPolicy {v.namespace}/{v.partition_policy} exists that this drill did not make"
                )
                return await _not_stopped(deps, w, run, detail, "PolicyNameTaken")
            continue  # an earlier attempt made it
        if pod is None or pod.metadata.uid != v.uid:
            detail = f"pod {v.pod} (uid {v.uid[:8]}) is no longer the one chosen; nothing cut off"
            return await _not_stopped(deps, w, run, detail)
        manifest = partition.partition_policy(
            name=v.partition_policy or "",
            namespace=v.namespace,
            victim=v.partition_selector or {},
            component_key=v.component_label or "",
            cut_from=spec.fault.partition.from_,
            drill_uid=w.uid,
            owner=partition.owner_of(w.obj) if w.namespace == v.namespace else None,
        )
        with using("spec.target"):
            await deps.kube.create_network_policy(v.namespace, manifest)
        created.append(time.time())
    crashpoint("policy-created")
    t = w.status.timeline
    # None created now: an attempt before a crash did, right after injectionSentAt was written.
    injected_at = min(created) if created else (t.injection_sent_at or t.injecting_at or time.time())
    cut = " and ".join(sorted(spec.fault.partition.from_))
    names = ", ".join(f"{v.pod} (NetworkPolicy {v.partition_policy})" for v in victims)
    message = f"cut {names} off from {cut} for {spec.fault.duration_seconds}s"
    await _record_injected(w, spec, injected_at, "NetworkPartitioned", message)
    return True


async def _not_stopped(
    deps: Deps, w: StatusWriter, run: RunSnapshot, detail: str, reason: str = "VictimChanged"
) -> bool:
    await end_run(
        deps,
        w,
        run,
        Outcome(Phase.FAILED, Verdict.ERROR, reason, f"fault not injected: {detail}"),
        conditions=w.condition("Injected", False, reason, detail),
    )
    return False


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
