"""How the operator writes status: merge patches built from the typed models, a phase change
with an Event each, conditions.

``StatusWriter`` keeps the status as the API server last acknowledged it, so every step reads
what it wrote before, even within one handler call.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from controller.operator.kube import Kube
from controller.operator.model import Phase
from controller.operator.state import Condition, DrillStatus
from controller.redaction import redact
from controller.timefmt import format_rfc3339, parse_optional_rfc3339

CONDITION_TYPES = ("Selected", "Injected", "Detected", "Diagnosed", "Recovered")


def rfc3339(ts: float) -> str:
    """The controller's own times: UTC with milliseconds."""
    return format_rfc3339(ts, digits=3)


parse_rfc3339 = parse_optional_rfc3339


def stop_requested(obj: dict[str, Any]) -> str | None:
    """'deletion' or 'abort' when the user asked the drill to stop (nothing may be injected
    from then on); None otherwise."""
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "deletion"
    if (obj.get("spec") or {}).get("abort") is True:
        return "abort"
    return None


# A string the controller writes to status is at most this long: much of it quotes what a PD,
# a Prometheus or a model answered, and none of that may grow the object without bound.
MAX_TEXT = 2000
# Kept whole: the saved manifest of a bare pod is what recreates it (redacted when saved).
_KEPT_WHOLE = frozenset({"manifest"})


def scrub(value: Any, key: str = "") -> Any:
    """Every string in a status write, at any depth, redacted and bounded: the one place that
    keeps secrets and runaway answers out of status, whichever field carries them."""
    if isinstance(value, str):
        text = redact(value)
        if key not in _KEPT_WHOLE and len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 20] + " … [truncated]"
        return text
    if isinstance(value, dict):
        return {k: scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, key) for v in value]
    return value


def _wire(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


class StatusWriter:
    def __init__(self, kube: Kube, obj: dict[str, Any]) -> None:
        self.kube = kube
        self.obj = obj
        self.status = DrillStatus.of(obj)

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])

    async def patch(self, *, resource_version: str | None = None, **fields: Any) -> None:
        """Merge-patch status fields (camelCase names; models, lists of models, plain values;
        None deletes). The API server's answer becomes our view of the object: its status, and
        its metadata and spec too, so a deletion or an abort requested meanwhile is seen at the
        next write. ``resource_version``: write only if the object is still at that version."""
        patch = {name: scrub(_wire(value), name) for name, value in fields.items()}
        if resource_version is None:
            result = await self.kube.patch_status(self.namespace, self.name, patch)
        else:
            result = await self.kube.patch_status(
                self.namespace, self.name, patch, resource_version=resource_version
            )
        self.status = DrillStatus.of(result)
        self.obj = {**self.obj, **{k: result[k] for k in ("metadata", "spec") if k in result}}

    @property
    def stop_requested(self) -> str | None:
        """Why nothing more may be injected, as far as the last read or write showed."""
        return stop_requested(self.obj)

    def condition(
        self, ctype: str, ok: bool, reason: str, message: str, now: float | None = None
    ) -> list[Condition]:
        """The conditions with one set (its lastTransitionTime kept when its status is unchanged)."""
        now = time.time() if now is None else now
        wanted = "True" if ok else "False"
        conditions = [c.model_copy() for c in self.status.conditions]
        current = next((c for c in conditions if c.type == ctype), None)
        if current is None:
            conditions.append(
                Condition(type=ctype, status=wanted, reason=reason, message=message, lastTransitionTime=now)
            )
        else:
            if current.status != wanted:
                current.last_transition_time = now
            current.status, current.reason, current.message = wanted, reason, message
        order = {t: i for i, t in enumerate(CONDITION_TYPES)}
        return sorted(conditions, key=lambda c: order.get(c.type, 99))

    async def transition(
        self, phase: Phase, reason: str, message: str, *, event_type: str = "Normal", **fields: Any
    ) -> None:
        """Change phase (with whatever else belongs to the step) and record it as an Event."""
        await self.patch(phase=phase.value, reason=reason, message=message, **fields)
        await self.kube.emit_event(self.obj, event_type, reason, f"{phase.value}: {message}")
