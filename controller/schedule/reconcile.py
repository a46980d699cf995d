"""Carry out one reconcile of a ``ChaosDemoSchedule``: read its runs, plan, create and delete
ChaosDemos, write the status. Called by the kopf timer; tests call it too."""

from __future__ import annotations

import logging
import time
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from controller.operator.errors import api_message, field_of
from controller.operator.kube import Kube
from controller.operator.model import GROUP, KIND, VERSION, DrillSpec
from controller.schedule.cadence import CadenceError, parse
from controller.schedule.coverage import tally
from controller.schedule.model import (
    MAX_NAME_LENGTH,
    SCHEDULE_KIND,
    SCHEDULE_LABEL,
    SCHEDULE_PLURAL,
    SCHEDULED_AT_ANNOTATION,
    ScheduleSpec,
    ScheduleStatus,
)
from controller.schedule.plan import Child, child_name, invalid, plan
from controller.tickets import TicketDB
from controller.timefmt import format_rfc3339, parse_optional_rfc3339

log = logging.getLogger(__name__)


class InvalidSchedule(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def child_body(schedule: dict[str, Any], spec: ScheduleSpec, scheduled_at: float) -> dict[str, Any]:
    """A ChaosDemo for one run: the template, labelled and owned by the schedule (deleting the
    schedule deletes its runs, whose finalizers restore whatever they changed)."""
    meta = schedule["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": child_name(meta["name"], scheduled_at),
            "namespace": meta["namespace"],
            "labels": {**spec.template.labels, SCHEDULE_LABEL: meta["name"]},
            "annotations": {
                **spec.template.annotations,
                SCHEDULED_AT_ANNOTATION: format_rfc3339(scheduled_at),
            },
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": SCHEDULE_KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec.template.spec,
    }


def _child(obj: dict[str, Any]) -> Child:
    meta = obj["metadata"]
    status = obj.get("status") or {}
    metrics = status.get("metrics") or {}
    scheduled = parse_optional_rfc3339((meta.get("annotations") or {}).get(SCHEDULED_AT_ANNOTATION))
    return Child(
        name=meta["name"],
        scheduled_at=scheduled or parse_optional_rfc3339(meta.get("creationTimestamp")) or 0.0,
        phase=status.get("phase"),
        verdict=status.get("verdict"),
        deleting=meta.get("deletionTimestamp") is not None,
        time_to_detect_seconds=metrics.get("timeToDetectSeconds"),
        time_to_recover_seconds=metrics.get("timeToRecoverSeconds"),
    )


async def _validate(kube: Kube, schedule: dict[str, Any], spec: ScheduleSpec) -> None:
    """Everything the CRD schema cannot check: the name's length, the template as a ChaosDemo
    (by the API server itself, with a server-side dry run of a run)."""
    name = schedule["metadata"]["name"]
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSchedule("NameTooLong", f"a schedule's name has at most {MAX_NAME_LENGTH} characters")
    try:
        DrillSpec.model_validate(spec.template.spec)
    except ValidationError as exc:
        where, message = field_of(exc, "spec.template.spec")
        raise InvalidSchedule("InvalidTemplate", f"{where}: {message}") from exc
    try:
        await kube.create_chaosdemo(
            schedule["metadata"]["namespace"], child_body(schedule, spec, 0), dry_run=True
        )
    except ApiException as exc:
        if exc.status in (400, 422):
            raise InvalidSchedule(
                "InvalidTemplate", f"the API server refuses the template: {api_message(exc)}"
            ) from exc
        raise


async def reconcile(
    kube: Kube, schedule: dict[str, Any], *, now: float | None = None, db: TicketDB | None = None
) -> ScheduleStatus:
    now = time.time() if now is None else now
    meta = schedule["metadata"]
    name, namespace, uid = meta["name"], meta["namespace"], meta["uid"]
    generation = meta.get("generation")
    status = ScheduleStatus.model_validate(schedule.get("status") or {})
    created_at = parse_optional_rfc3339(meta.get("creationTimestamp")) or now
    try:
        try:
            spec = ScheduleSpec.model_validate(schedule.get("spec") or {})
            cadence = parse(spec.schedule, spec.time_zone, anchor=created_at)
        except ValidationError as exc:
            raise InvalidSchedule("InvalidSpec", str(exc.errors()[0]["msg"])) from exc
        except CadenceError as exc:
            raise InvalidSchedule("InvalidSchedule", str(exc)) from exc
        if status.observed_generation == generation and not status.valid:
            return status  # invalid until the spec changes; the status already says why
        if status.observed_generation != generation:
            await _validate(kube, schedule, spec)
    except InvalidSchedule as exc:
        new = invalid(status, exc.reason, str(exc), generation)
        if new.wire() != status.wire():
            await kube.patch_status(namespace, name, new.wire(), plural=SCHEDULE_PLURAL)
            await kube.emit_event(schedule, "Warning", exc.reason, str(exc))
        return new

    owned = [
        obj
        for obj in await kube.list_chaosdemos_in(namespace, f"{SCHEDULE_LABEL}={name}")
        if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
    ]
    p = plan(
        name,
        spec,
        cadence,
        status,
        [_child(o) for o in owned],
        now=now,
        created_at=created_at,
        generation=generation,
    )
    for child in p.delete:
        await kube.delete_chaosdemo(namespace, child)
    if p.create is not None:
        try:
            await kube.create_chaosdemo(namespace, child_body(schedule, spec, p.create))
        except ApiException as exc:
            if exc.status != 409:  # 409: created before a crash; it is the same run
                raise
    for event_type, reason, message in p.events:
        await kube.emit_event(schedule, event_type, reason, message)
    if db is not None:  # the controller's ticket store holds every finished run's record
        p.status.coverage = await tally(db, namespace, name)
    if p.status.wire() != status.wire():
        await kube.patch_status(namespace, name, p.status.wire(), plural=SCHEDULE_PLURAL)
    return p.status
