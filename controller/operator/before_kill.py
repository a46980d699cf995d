"""The phases before the kill: the target's lock (Pending), then preflight, which chooses the
victims and records them before anything is touched (Preflight)."""

from __future__ import annotations

import time
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator import (
    clocks,
    cni,
    decisions,
    lock,
    metrics,
    operator_pause,
    outage,
    partition,
    source_access,
)
from controller.operator.crashpoints import crashpoint
from controller.operator.decisions import Outcome
from controller.operator.deps import Deps
from controller.operator.ending import end_run
from controller.operator.errors import PermanentError, using
from controller.operator.model import DrillSpec, Phase, Verdict
from controller.operator.pd_access import pd_for
from controller.operator.preflight import Preflight, run_preflight
from controller.operator.recovery import saved_manifest
from controller.operator.state import (
    RunSnapshot,
    Victim,
)
from controller.operator.status import StatusWriter
from controller.operator.victims import describe_victim
from controller.pd.client import PDUnavailable, cluster_name
from controller.pd.models import pod_of_address
from controller.tlsclient import TLSConfigError

# Preflight refusals that a drill queued behind another one waits out rather than fails on.
SETTLING_REASONS = frozenset({"OpenTicket", "StoreNotUp"})


WAIT_RECHECK_SECONDS = 2.0


async def pending(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
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


async def preflight(deps: Deps, w: StatusWriter, run: RunSnapshot, spec: DrillSpec) -> bool:
    ns = run.target_namespace
    try:
        pd = await pd_for(deps, run)
    except TLSConfigError as exc:  # the Secret is missing, unreadable or not usable TLS material
        return await _refused(deps, w, run, exc.reason, str(exc))
    if not run.ticket_cluster:
        # The cluster's identity (PD's cluster id) is pinned at the first preflight PD answers;
        # while it does not, preflight's own checks (namespace first) still run and refuse.
        try:
            with using("spec.target.pdAddress"):
                run = run.model_copy(update={"ticket_cluster": cluster_name(await pd.cluster_id())})
            metrics.cluster_known(run.ticket_cluster)
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
    source_refusal = await source_access.check_sources(deps, run, spec.detection.sources)
    if source_refusal is not None:
        return await _refused(deps, w, run, source_refusal.reason, source_refusal.message)
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
        with using("spec.target"):
            to_pause = await operator_pause.cluster_to_pause(deps.kube, ns, pod)
        if isinstance(to_pause, operator_pause.PauseRefusal):
            return await _refused(deps, w, run, to_pause.reason, to_pause.message)
        # Saved before the swap: whatever happens next, the original image is known, and the
        # Cluster whose pause the teardown undoes.
        victim = victim.model_copy(
            update={**outage.victim_fields(pod, spec.fault.pause_image), "paused_cluster": to_pause}
        )
    if spec.fault.action == "network-partition":
        cut: list[Victim] = []
        for index, v in enumerate(victims):
            pod = next(p for p in result.candidates if p.metadata.name == v.pod)
            fields = partition.victim_fields(pod, partition.policy_name(w.uid, run.generation, index))
            if isinstance(fields, partition.PartitionRefusal):
                return await _refused(deps, w, run, fields.reason, fields.message)
            selector = ",".join(f"{k}={val}" for k, val in fields["partition_selector"].items())
            with using("spec.target"):
                matching = [p.metadata.name for p in await deps.kube.list_pods(ns, selector)]
            if matching != [v.pod]:
                return await _refused(
                    deps, w, run, "NoPodIdentityLabel", f"{selector} selects {matching}, not {v.pod} alone"
                )
            cut.append(v.model_copy(update=fields))
        victims, victim = cut, cut[0]
        unconfirmed = await cni.enforcement_warning(deps.kube, deps.config.network_policy_enforcer)
        if unconfirmed is not None:
            await deps.kube.emit_event(w.obj, "Warning", "NetworkPolicyEnforcementUnknown", unconfirmed)
    who = " and ".join(f"{ns}/{v.pod} ({describe_victim(v)})" for v in victims)
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
                f"dry run: preflight passed; would {_verb(victim)} {who}; nothing was touched",
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


def _verb(victim: Victim) -> str:
    return "stop" if victim.outage else "cut off" if victim.partitioned else "kill"


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
