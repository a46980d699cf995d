"""Looking at the victim after the kill: one ``RecoveryObservation`` per step, from the pod, PD's
store and PD's region checks. Shared by recovery, abort and the finalizer, so "whole again" means
one thing everywhere (``RecoveryObservation.whole``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from controller.operator.kube import Kube
from controller.operator.preflight import pod_ready
from controller.operator.recovery_moments import PDRecoveryObservation, RecoveryObservation, combined
from controller.operator.state import Victim
from controller.pd import HealthMember, PDClient, PDError, StoreInfo
from controller.pd.models import RegionCheck, pod_of_address
from controller.pd.quorum import region_peers, regions_losing_majority
from controller.pd.risk import regions_at_risk
from controller.timefmt import parse_rfc3339

# Fields the API server owns: a manifest saved for re-creation must not carry them.
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def saved_manifest(api_client: Any, pod: Any) -> str | None:
    """The pod as JSON for re-creation, only for a bare pod (nothing else would bring it back).

    Status is shared with anyone who may read the ChaosDemo, so literal env values are dropped
    (a secret can sit there); references (secretKeyRef, configMapKeyRef) keep working.
    """
    if pod.metadata.owner_references:
        return None
    data = api_client.sanitize_for_serialization(pod)
    data.pop("status", None)
    for key in _SERVER_FIELDS:
        data.get("metadata", {}).pop(key, None)
    data.get("metadata", {}).pop("annotations", None)
    data.get("spec", {}).pop("nodeName", None)  # let the scheduler place it again
    for container in data.get("spec", {}).get("containers", []) + data.get("spec", {}).get(
        "initContainers", []
    ):
        container["env"] = [e for e in container.get("env", []) if "valueFrom" in e]
    return json.dumps(data, sort_keys=True)


def _ready_since(pod: Any) -> float | None:
    for c in pod.status.conditions or []:
        if c.type == "Ready" and c.status == "True" and c.last_transition_time is not None:
            ltt = c.last_transition_time
            return ltt.timestamp() if hasattr(ltt, "timestamp") else parse_rfc3339(str(ltt))
    return None


def _start_time(store: StoreInfo) -> float:
    """PD's start_ts where it has one (RFC 3339, possibly finer than a second), else the store
    meta's start_timestamp (whole seconds)."""
    return store.status.start_ts if store.status.start_ts is not None else float(store.store.start_timestamp)


def _start_resolution(store: StoreInfo) -> float:
    started = _start_time(store)
    return 1.0 if started == int(started) else 0.001


def _beyond_the_drill(
    stores: list[StoreInfo], regions: RegionCheck | None, victims: frozenset[int]
) -> tuple[tuple[str, ...], list[int]]:
    """For the drill's continuous safety: stores other than the victims that are not Up, and
    regions without a Raft majority of healthy voters (none known without ``regions``)."""
    others = tuple(
        f"store {s.id} ({s.pod}) {s.store.state_name}"
        for s in stores
        if s.id not in victims and s.store.state == 0 and s.store.state_name != "Up"
    )
    if regions is None:
        return others, []
    gone = frozenset(s.id for s in stores if s.store.state_name != "Up")
    return others, regions_losing_majority(region_peers(regions, stores), frozenset(), gone)


def _runs_original_image(pod: Any, victim: Victim) -> bool:
    containers = pod.spec.containers or []
    index = victim.container_index or 0
    return index < len(containers) and containers[index].image == victim.original_image


@dataclass(frozen=True)
class _PodLook:
    asked_at: float
    seen_at: float
    ready: bool
    back: bool
    ready_since: float | None
    ready_resolution: float


async def _look_at_pod(kube: Kube, victim: Victim, restored_at: float | None) -> _PodLook:
    """The victim's pod now. A bare pod that is gone is recreated from its saved manifest.
    ``restored_at``: when a stopped store's original image was put back (store-outage)."""
    asked_at = time.time()
    pod = await kube.get_pod(victim.namespace, victim.pod)
    seen_at = time.time()
    if pod is None and victim.manifest:
        await kube.create_pod(victim.namespace, json.loads(victim.manifest))
    ready = pod is not None and pod_ready(pod)
    replaced = pod is not None and pod.metadata.uid != victim.uid
    # The pod runs the store again: a new pod (pod-kill), or the victim's own pod with its
    # original image back (store-outage).
    back = (
        replaced
        or (
            pod is not None
            and victim.outage
            and restored_at is not None
            and _runs_original_image(pod, victim)
        )
        # network-partition: the same pod, its process never stopped; back once the cut is undone.
        or (pod is not None and victim.partitioned and restored_at is not None)
    )
    ready_since = _ready_since(pod) if ready else None
    if (
        back
        and not replaced
        and restored_at is not None
        and (ready_since is None or ready_since < restored_at)
    ):
        # The pod stayed Ready through the outage (nothing probes the pause container): the store
        # ran again from the swap back, a moment the controller wrote itself.
        return _PodLook(asked_at, seen_at, ready, back, restored_at, 0.0)
    return _PodLook(asked_at, seen_at, ready, back, ready_since, 1.0)


def _store_observation(
    victim: Victim,
    pod: _PodLook,
    asked_at: float,
    seen_at: float,
    stores: list[StoreInfo],
    regions: RegionCheck | None,
    health: list[HealthMember],
    victims: frozenset[int],
    restored_at: float | None = None,
) -> RecoveryObservation:
    """One victim from its pod and one shared look at PD (``victims``: every victim's store,
    which are down by design and so no safety problem). ``restored_at``: when the fault was
    undone (a partitioned store is back with a heartbeat after it, not with a restart)."""
    store = next(
        (s for s in stores if pod_of_address(s.store.address) == (victim.pod, victim.namespace)), None
    )
    up = [s for s in stores if s.store.state_name == "Up"]
    total_leaders = sum(s.status.leader_count for s in up)
    unhealthy = (
        None
        if regions is None
        else sum(
            1
            for region in regions.regions
            if any(d.peer.store_id == victim.store_id for d in region.down_peers)
            or any(p.store_id == victim.store_id for p in region.pending_peers)
        )
    )
    # Safety: what is wrong beyond the victims (another store, PD, regions without a majority).
    others, without_majority = _beyond_the_drill(stores, regions, victims)
    return RecoveryObservation(
        seen_at=seen_at,
        pod_ready=pod.ready,
        pod_back=pod.back,
        pod_ready_since=pod.ready_since,
        pod_ready_resolution=pod.ready_resolution,
        store_state=store.store.state_name if store else None,
        store_started=_start_time(store) if store else None,
        store_started_resolution=_start_resolution(store) if store else 1.0,
        store_last_heartbeat=store.store.last_heartbeat_seconds if store else None,
        unhealthy_regions=unhealthy,
        leaders=store.status.leader_count if store else None,
        fair_leaders=total_leaders // len(up) if up else None,
        pod_seen_at_=pod.seen_at,
        asked_at=asked_at,
        pod_asked_at=pod.asked_at,
        reconnected_after=(restored_at if restored_at is not None else math.inf)
        if victim.partitioned
        else None,
        other_stores_not_up=others,
        pd_members_unhealthy=tuple(m.name for m in health if not m.health),
        regions_without_majority=tuple(without_majority),
    )


async def observe_pd(kube: Kube, pd: PDClient, victim: Victim) -> PDRecoveryObservation:
    """How PD is after its leader's pod was deleted: the pod, the leader, the victim member's
    health, and (for the drill's safety) the other members, the stores and the regions."""
    member = victim.pd_member or victim.pod
    pod_asked_at = time.time()
    pod = await kube.get_pod(victim.namespace, victim.pod)
    pod_seen_at = time.time()
    ready = pod is not None and pod_ready(pod)
    replaced = pod is not None and pod.metadata.uid != victim.uid
    ready_since = _ready_since(pod) if ready else None
    asked_at = time.time()
    try:
        # Served by any member, even while the members elect a leader.
        health, leader = await asyncio.gather(pd.health(), pd.leader())
    except PDError as exc:
        return PDRecoveryObservation(
            time.time(),
            ready,
            replaced,
            ready_since,
            pd_error=f"PD unavailable: {exc}",
            pod_seen_at_=pod_seen_at,
            pod_asked_at=pod_asked_at,
            victim_member=member,
        )
    seen_at = time.time()
    try:
        stores = await pd.stores()
        regions = await regions_at_risk(pd, stores, frozenset())
    except PDError:
        # A follower forwards these to the leader: without one (the fault itself), nothing to add.
        stores, regions = [], None
    others, without_majority = _beyond_the_drill(stores, regions, frozenset())
    return PDRecoveryObservation(
        seen_at=seen_at,
        pod_ready=ready,
        pod_back=replaced,
        pod_ready_since=ready_since,
        pod_seen_at_=pod_seen_at,
        asked_at=asked_at,
        pod_asked_at=pod_asked_at,
        other_stores_not_up=others,
        pd_members_unhealthy=tuple(m.name for m in health if not m.health and m.name != member),
        regions_without_majority=tuple(without_majority),
        victim_member=member,
        pd_leader=leader,
        member_healthy=any(m.name == member and m.health for m in health),
    )


async def observe_all(
    kube: Kube, pd: PDClient, victims: list[Victim], injected_at: float, restored_at: float | None = None
) -> RecoveryObservation:
    """Every victim of the run, seen as one (``recovery_moments.combined``)."""
    if victims and victims[0].pd_member:
        return await observe_pd(kube, pd, victims[0])
    pods = await asyncio.gather(*(_look_at_pod(kube, v, restored_at) for v in victims))
    victim_stores = frozenset(v.store_id for v in victims if v.store_id is not None)
    # One look at PD serves every victim. PD's region checks list every region with a peer on a
    # store that is down: while a victim is, that is its every region (the whole cluster on
    # three stores, 10^5 regions and 100 MB a step). They are asked for only when they can say
    # something new: once every victim is back (pod Ready, store Up: are its regions healthy?),
    # or when a store beyond the victims is not Up (which regions lost their majority?).
    asked_at = time.time()
    try:
        stores, health = await asyncio.gather(pd.stores(), pd.health())
        not_up = {s.id for s in stores if s.store.state_name != "Up"}
        victims_back = all(p.ready and p.back for p in pods) and not (not_up & victim_stores)
        regions = (
            await regions_at_risk(pd, stores, victim_stores)
            if victims_back or (not_up - victim_stores)
            else None
        )
    except PDError as exc:
        failed = time.time()
        looks = [
            RecoveryObservation(
                failed,
                p.ready,
                p.back,
                p.ready_since,
                pod_ready_resolution=p.ready_resolution,
                pd_error=f"PD unavailable: {exc}",
                pod_seen_at_=p.seen_at,
                pod_asked_at=p.asked_at,
            )
            for p in pods
        ]
        return combined(looks, injected_at)
    seen_at = time.time()
    looks = [
        _store_observation(v, p, asked_at, seen_at, stores, regions, health, victim_stores, restored_at)
        for v, p in zip(victims, pods, strict=True)
    ]
    return combined(looks, injected_at)
