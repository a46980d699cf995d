"""Gather what the diagnoser sees: the ticket, PD's stores, metric summaries, Kubernetes
Events of the victim and its namespace, recent tickets, and (unless blind) the drill record."""

from __future__ import annotations

import time
from typing import Any

from controller.diagnosis.evidence import DiagnosisInput, DrillRecord, KubeEvent
from controller.diagnosis.metrics import incident_metrics
from controller.operator.kube import Kube
from controller.pd import PDClient, PDError
from controller.prom import PrometheusClient
from controller.tickets import Ticket, TicketDB

EVENTS_LIMIT = 30


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


async def gather(
    *,
    ticket: Ticket,
    db: TicketDB,
    pd: PDClient,
    prom: PrometheusClient | None,
    kube: Kube,
    namespace: str,
    pod: str,
    drill: DrillRecord | None,
    cluster: str,
    tikv_job: str,
) -> DiagnosisInput:
    now = time.time()
    try:
        stores = await pd.stores()
    except PDError:
        stores = None
    metrics = await incident_metrics(prom, ticket.opened_at - 60, now, job=tikv_job) if prom else []
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
        metrics=metrics,
        events=[_event(e) for e in relevant[:EVENTS_LIMIT]],
        recent_tickets=recent,
        drill=drill,
        now=now,
    )
