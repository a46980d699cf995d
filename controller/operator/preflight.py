"""Safety guards, run before anything is deleted. Each refusal names its reason.

Order matters: cheap, local checks first; then what needs PD and the ticket store. A refusal
ends the drill with verdict Error and deletes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from controller.operator.decisions import choose_victims
from controller.operator.errors import using
from controller.operator.kube import Kube
from controller.operator.model import OPT_IN_ANNOTATION, TRUSTS_ANNOTATION, DrillSpec
from controller.pd import PDClient, PDError, StoreInfo
from controller.pd.client import PDUnavailable
from controller.pd.models import pod_of_address
from controller.pd.quorum import keeps_majority, majority, region_peers, regions_losing_majority
from controller.pd.risk import regions_for_quorum_check
from controller.tickets import Ticket, TicketDB


@dataclass
class Preflight:
    ok: bool
    reason: str
    message: str
    candidates: list[Any] = field(default_factory=list)  # Ready pods that may be killed
    stores: list[StoreInfo] = field(default_factory=list)
    # fault.count above one: the pods chosen to go together (every region keeps its majority).
    chosen: list[str] = field(default_factory=list)


def refuse(reason: str, message: str) -> Preflight:
    return Preflight(False, reason, message)


def pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status is None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def namespace_trust(
    target: str, source: str, annotations: dict[str, str], allowed: frozenset[str]
) -> Preflight | None:
    """May a ChaosDemo in ``source`` drill ``target``? None if so, else the refusal.

    The target must be opted in (annotation, or the controller's allow-list). A drill from another
    namespace also needs the target's consent: its ``allowed-from`` annotation names the source
    (an allow-listed target is the cluster admin's consent for every namespace). Otherwise anyone
    who may create a ChaosDemo anywhere could kill pods in any opted-in namespace.
    """
    if target in allowed:
        return None
    if annotations.get(OPT_IN_ANNOTATION) != "true":
        return refuse(
            "NamespaceNotOptedIn",
            f"namespace {target!r} is not opted in: annotate it {OPT_IN_ANNOTATION}=true "
            "or add it to the controller's CHAOSDEMO_ALLOWED_NAMESPACES",
        )
    if source != target:
        trusted = {n.strip() for n in annotations.get(TRUSTS_ANNOTATION, "").split(",") if n.strip()}
        if source not in trusted:
            return refuse(
                "NamespaceNotTrusted",
                f"namespace {target!r} does not accept drills from namespace {source!r}: add {source} to its "
                f"{TRUSTS_ANNOTATION} annotation",
            )
    return None


async def run_preflight(
    *,
    kube: Kube,
    spec: DrillSpec,
    target_namespace: str,
    source_namespace: str,
    allowed_namespaces: frozenset[str],
    pd: PDClient,
    db: TicketDB,
    cluster: str,
    seed: str = "",
) -> Preflight:
    with using("spec.target.namespace"):
        annotations = await kube.namespace_annotations(target_namespace)
    if annotations is None:
        return refuse("TargetNamespaceNotFound", f"namespace {target_namespace!r} does not exist")
    trust = namespace_trust(target_namespace, source_namespace, annotations, allowed_namespaces)
    if trust is not None:
        return trust

    if spec.fault.action == "pd-leader-kill":
        return await _pd_leader_preflight(kube, spec, target_namespace, pd, db, cluster)

    selector = spec.target.selector.to_label_selector()
    with using("spec.target.selector"):
        pods = await kube.list_pods(target_namespace, selector)
    if not pods:
        return refuse("NoMatchingPods", f"no pod in {target_namespace!r} matches selector {selector!r}")
    ready = [p for p in pods if pod_ready(p)]
    if spec.target.pod:
        named = [p for p in pods if p.metadata.name == spec.target.pod]
        if not named:
            return refuse(
                "NamedPodNotFound",
                f"pod {spec.target.pod!r} does not exist in {target_namespace!r} or does not match "
                f"selector {selector!r}",
            )
        if not pod_ready(named[0]):
            return refuse("NamedPodNotReady", f"pod {spec.target.pod!r} is not Running and Ready")
        ready = named
    if not ready:
        return refuse("NoReadyPods", f"none of the {len(pods)} pods matching {selector!r} is Ready")

    try:
        stores = await pd.stores()
        config = await pd.config()
    except PDUnavailable as exc:
        return _unreachable(exc, "cannot verify the cluster's health")
    except PDError as exc:
        # Something answers at the address, but not as PD: the spec (or the default) is wrong.
        return refuse("PDRejected", f"spec.target.pdAddress ({pd.base_url}) does not serve PD's API: {exc}")
    by_pod = {pod_of_address(s.store.address): s for s in stores}
    candidates = [p for p in ready if (p.metadata.name, target_namespace) in by_pod]
    if not candidates:
        return refuse(
            "NoStoreForPods",
            f"PD knows no store for the candidate pods in {target_namespace!r}; "
            "is target.pdAddress the PD of this cluster?",
        )
    not_up = [s for s in stores if s.store.state_name != "Up" and s.store.state == 0]
    open_tickets = await db.open_tickets(cluster)
    if spec.safety.require_healthy_cluster:
        if not_up:
            listing = ", ".join(f"store {s.id} ({s.pod}) {s.store.state_name}" for s in not_up)
            return refuse("StoreNotUp", f"not every store is Up: {listing}")
        if open_tickets:
            return _open_ticket_refusal(open_tickets)
    # Even when an unhealthy cluster is allowed, a store with an open ticket cannot be a victim:
    # the monitor would fold the new kill into that incident, and detection could not be measured.
    ticketed = {t.store_id for t in open_tickets if t.store_id is not None}
    by_name = {pod_of_address(s.store.address)[0]: s.id for s in stores}
    candidates = [p for p in candidates if by_name.get(p.metadata.name) not in ticketed]
    if not candidates:
        return refuse(
            "OpenTicket", "every candidate's store has an open ticket; its incident must resolve first"
        )
    up = [s for s in stores if s.store.state_name == "Up" and s.store.state == 0]
    needed = majority(config.max_replicas)
    count = spec.fault.count
    if count > len(candidates):
        return refuse(
            "NotEnoughCandidates", f"fault.count is {count} but only {len(candidates)} pod(s) may be killed"
        )
    if not keeps_majority(len(up), count, config.max_replicas):
        return refuse(
            "WouldLoseMajority",
            f"killing {count} more store(s) leaves {len(up) - count} Up store(s); regions with "
            f"{config.max_replicas} replicas need {needed} for a Raft majority",
        )
    # Region by region: a candidate whose store holds a voter of a region that has already lost
    # others (a store Down, a peer pending) may cost that region its majority. Such a candidate
    # is never chosen; if none is left, nothing is killed and the regions are named.
    try:
        candidate_ids = frozenset(by_name[p.metadata.name] for p in candidates)
        regions = region_peers(await regions_for_quorum_check(pd, stores, candidate_ids, count), stores)
    except PDError as exc:
        return _unreachable(exc, "cannot read PD's regions to check quorum")
    gone = frozenset(s.id for s in stores if s.id not in {u.id for u in up})
    at_risk: dict[str, list[int]] = {}
    for pod in candidates:
        lost = regions_losing_majority(regions, frozenset({by_name[pod.metadata.name]}), gone)
        if lost:
            at_risk[pod.metadata.name] = lost
    candidates = [p for p in candidates if p.metadata.name not in at_risk]
    if not candidates:
        name, lost = next(iter(at_risk.items()))
        return refuse(
            "WouldLoseMajority",
            f"killing {name} (store {by_name[name]}) would leave {len(lost)} region(s) without a Raft "
            f"majority of healthy voters: {_region_list(lost)}",
        )
    chosen: list[str] = []
    if count > 1:
        chosen, refusal = choose_victims(
            [p.metadata.name for p in candidates],
            count,
            seed,
            lambda names: regions_losing_majority(regions, frozenset(by_name[n] for n in names), gone),
        )
        if not chosen:
            tried, lost = refusal or ((), [])
            listed = " and ".join(f"{n} (store {by_name[n]})" for n in tried)
            return refuse(
                "WouldLoseMajority",
                f"no {count} of the {len(candidates)} candidates can go together: killing {listed} would leave "
                f"{len(lost)} region(s) without a Raft majority of healthy voters: {_region_list(lost)}",
            )
    return Preflight(
        True,
        "PreflightPassed",
        f"{len(candidates)} candidate pod(s), {len(up)} stores Up",
        candidates=candidates,
        stores=stores,
        chosen=chosen,
    )


def _open_ticket_refusal(open_tickets: list[Ticket]) -> Preflight:
    t = open_tickets[0]
    return refuse(
        "OpenTicket",
        f"the cluster already has {len(open_tickets)} open ticket(s), e.g. "
        f"#{t.id} {t.invariant} on {t.subject}: a drill now would blur it",
    )


def _region_list(ids: list[int]) -> str:
    return ", ".join(str(r) for r in ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


PD_COMPONENT_SELECTOR = "app.kubernetes.io/component=pd"


async def _pd_leader_preflight(
    kube: Kube, spec: DrillSpec, namespace: str, pd: PDClient, db: TicketDB, cluster: str
) -> Preflight:
    """pd-leader-kill: the victim is whichever member PD names as its leader, whose pod must be a
    Ready PD pod in the target namespace; the other members must keep etcd's majority."""
    try:
        health, leader, stores = await asyncio.gather(pd.health(), pd.leader(), pd.stores())
    except PDUnavailable as exc:
        return _unreachable(exc, "cannot verify the cluster's health")
    except PDError as exc:
        return refuse("PDRejected", f"spec.target.pdAddress ({pd.base_url}) does not serve PD's API: {exc}")
    if leader is None:
        return refuse("PDNoLeader", "PD names no leader now; there is no leader to kill")
    healthy = [m.name for m in health if m.health]
    unhealthy = [m.name for m in health if not m.health]
    if (len(healthy) - 1) * 2 <= len(health):
        return refuse(
            "WouldLosePDQuorum",
            f"killing the PD leader {leader} leaves {len(healthy) - 1} healthy of {len(health)} PD members: "
            "etcd needs a majority to elect a new leader",
        )
    with using("spec.target.namespace"):
        pods = await kube.list_pods(namespace, PD_COMPONENT_SELECTOR)
    pod = next((p for p in pods if p.metadata.name == leader), None)
    if pod is None:
        return refuse(
            "LeaderPodNotFound",
            f"PD's leader {leader} is not a pod labelled {PD_COMPONENT_SELECTOR} in {namespace!r}",
        )
    if not pod_ready(pod):
        return refuse("LeaderPodNotReady", f"PD leader pod {leader} is not Running and Ready")
    if spec.safety.require_healthy_cluster:
        if unhealthy:
            return refuse("PDMemberUnhealthy", f"PD member(s) unhealthy: {', '.join(unhealthy)}")
        not_up = [s for s in stores if s.store.state_name != "Up" and s.store.state == 0]
        if not_up:
            listing = ", ".join(f"store {s.id} ({s.pod}) {s.store.state_name}" for s in not_up)
            return refuse("StoreNotUp", f"not every store is Up: {listing}")
        open_tickets = await db.open_tickets(cluster)
        if open_tickets:
            return _open_ticket_refusal(open_tickets)
    return Preflight(
        True,
        "PreflightPassed",
        f"PD leader {leader}; {len(healthy)} of {len(health)} PD members healthy",
        candidates=[pod],
        stores=stores,
        chosen=[leader],
    )


def _unreachable(exc: PDError, what: str) -> Preflight:
    """PD out of reach: a failed TLS handshake is named as such (the CA or the client
    certificate is wrong, not PD down), so the user fixes the Secret instead of waiting."""
    if isinstance(exc, PDUnavailable) and exc.tls_problem:
        return refuse("TLSHandshakeFailed", f"{what}: TLS with PD failed: {exc.tls_problem}")
    return refuse("PDUnavailable", f"{what}: {exc}")
