"""Gather what the diagnoser sees: the ticket and the whole cluster's evidence (PD's stores,
regions and members, metric summaries, the TiKV pods' restart history, Kubernetes Events of the
victim and its namespace, other tickets), and the drill record only when the drill is not blind.

Each source is asked on its own; one that fails is recorded as missing (``None``), never as
"nothing wrong"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from controller.diagnosis.inputs import DiagnosisInput, DrillRecord, KubeEvent, PDView, PodState
from controller.diagnosis.metrics import incident_metrics
from controller.operator.kube import Kube
from controller.pd import PDClient, PDError
from controller.pd.models import RegionCheck, StoreInfo
from controller.prom import PrometheusClient
from controller.tickets import Ticket, TicketDB

T = TypeVar("T")
EVENTS_LIMIT = 30
# Pods listed one by one in the evidence; the healthy rest of a big cluster adds nothing.
PODS_LIMIT = 40
METRICS_WINDOW_BEFORE_TICKET = 60.0


def _event(e: Any) -> KubeEvent:
    obj = e.involved_object
    last = e.last_timestamp or e.event_time or e.first_timestamp
    return KubeEvent(
        type=e.type or "Normal",
        reason=e.reason or "",
        message=e.message or "",
        object=f"{(obj.kind or '').lower()}/{obj.name}",
        count=e.count or 1,
        last_seen=last.timestamp() if last else None,
    )


def pod_state(pod: Any, container: str = "tikv") -> PodState:
    """The TiKV container's state (or the first container's) as a responder reads it."""
    status = pod.status
    statuses = (status.container_statuses or []) if status else []
    cs = next((c for c in statuses if c.name == container), statuses[0] if statuses else None)
    spec_image = next((c.image for c in pod.spec.containers if c.name == container), "") if pod.spec else ""
    waiting = cs.state.waiting if cs and cs.state else None
    last = cs.last_state.terminated if cs and cs.last_state else None
    return PodState(
        name=pod.metadata.name,
        phase=(status.phase if status else None) or "Unknown",
        ready=any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
        if status
        else False,
        created_at=pod.metadata.creation_timestamp.timestamp() if pod.metadata.creation_timestamp else None,
        node=(pod.spec.node_name if pod.spec else None) or "",
        image=spec_image or (cs.image if cs else ""),
        restarts=cs.restart_count if cs else 0,
        waiting_reason=(waiting.reason or "") if waiting else "",
        last_termination_reason=(last.reason or "") if last else "",
        last_exit_code=last.exit_code if last else None,
        last_finished_at=last.finished_at.timestamp() if last and last.finished_at else None,
    )


def _worth_listing(p: PodState, victim: str) -> bool:
    return p.name == victim or not p.ready or p.restarts > 0 or bool(p.waiting_reason)


async def _or_none(call: Awaitable[T]) -> T | None:
    try:
        return await call
    except PDError:
        return None


async def _pd_view(pd: PDClient) -> PDView | None:
    try:
        health, members = await asyncio.gather(pd.health(), pd.members())
    except PDError:
        return None
    leader = members.get("leader") or {}
    return PDView(members=health, leader=leader.get("name") if isinstance(leader, dict) else None)


async def gather(
    *,
    ticket: Ticket,
    db: TicketDB,
    pd: PDClient,
    prom: PrometheusClient | None,
    kube: Kube,
    namespace: str,
    pod: str,
    pod_selector: str,
    drill: DrillRecord | None,
    cluster: str,
    tikv_job: str,
) -> DiagnosisInput:
    now = time.time()
    stores: list[StoreInfo] | None
    regions: RegionCheck | None
    stores, regions, config, pd_view = await asyncio.gather(
        _or_none(pd.stores()), _or_none(pd.regions()), _or_none(pd.config()), _pd_view(pd)
    )
    metrics = (
        await incident_metrics(prom, ticket.opened_at - METRICS_WINDOW_BEFORE_TICKET, now, job=tikv_job)
        if prom
        else None
    )
    pods = [pod_state(p) for p in await kube.list_pods(namespace, pod_selector)]
    listed = sorted((p for p in pods if _worth_listing(p, pod)), key=lambda p: (p.name != pod, p.name))
    # The victim's own events (newest first, whatever the namespace holds), then the namespace's
    # recent warnings about other objects; never ChaosDemo's own.
    own = await kube.events_about(namespace, "Pod", pod)
    others = [
        e
        for e in await kube.events_for(namespace, limit=200)
        if e.involved_object
        and e.involved_object.kind != "ChaosDemo"
        and e.involved_object.name != pod
        and e.type == "Warning"
    ]
    relevant = own + others
    recent = await db.recent(10, cluster)
    return DiagnosisInput(
        ticket=ticket,
        stores=stores,
        regions=regions,
        max_replicas=config.max_replicas if config is not None else None,
        pd=pd_view,
        metrics=metrics or [],
        metrics_available=metrics is not None,
        events=[_event(e) for e in relevant[:EVENTS_LIMIT]],
        pods=listed[:PODS_LIMIT],
        recent_tickets=recent,
        drill=drill,
        now=now,
    )
