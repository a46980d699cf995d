"""How the operator writes status: phase changes with an Event each, conditions, timeline.

``StatusWriter`` keeps the status as the API server last acknowledged it, so every step reads
what it wrote before, even within one handler call.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from controller.operator.kube import Kube
from controller.operator.model import Phase, Verdict

CONDITION_TYPES = ("Selected", "Injected", "Detected", "Diagnosed", "Recovered")


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def seconds_text(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}s"


class StatusWriter:
    def __init__(self, kube: Kube, obj: dict[str, Any]) -> None:
        self.kube = kube
        self.obj = obj
        self.status: dict[str, Any] = dict(obj.get("status") or {})

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")

    def time_of(self, key: str) -> float | None:
        return parse_rfc3339((self.status.get("timeline") or {}).get(key))

    async def patch(self, patch: dict[str, Any]) -> None:
        """Merge-patch status; the API server's answer becomes our view of it."""
        result = await self.kube.patch_status(self.namespace, self.name, patch)
        self.status = dict(result.get("status") or {})

    def condition(
        self, ctype: str, ok: bool, reason: str, message: str, now: float | None = None
    ) -> list[dict[str, Any]]:
        """The conditions list with one condition set (lastTransitionTime kept if unchanged)."""
        now = time.time() if now is None else now
        conditions = [dict(c) for c in self.status.get("conditions") or []]
        wanted = "True" if ok else "False"
        for c in conditions:
            if c["type"] == ctype:
                if c.get("status") != wanted:
                    c["lastTransitionTime"] = rfc3339(now)
                c.update(status=wanted, reason=reason, message=message)
                break
        else:
            conditions.append(
                {
                    "type": ctype,
                    "status": wanted,
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": rfc3339(now),
                }
            )
        conditions.sort(
            key=lambda c: CONDITION_TYPES.index(c["type"]) if c["type"] in CONDITION_TYPES else 99
        )
        return conditions

    async def transition(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        event_type: str = "Normal",
    ) -> None:
        """Change phase (with whatever else belongs to the step) and record it as an Event."""
        patch: dict[str, Any] = {"phase": phase.value, "reason": reason, "message": message}
        patch.update(extra or {})
        await self.patch(patch)
        await self.kube.emit_event(self.obj, event_type, reason, f"{phase.value}: {message}")

    async def finish(
        self, phase: Phase, verdict: Verdict, reason: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        extra = dict(extra or {})
        timeline = {**(self.status.get("timeline") or {}), **extra.pop("timeline", {})}
        timeline["completedAt"] = rfc3339(time.time())
        patch = {"verdict": verdict.value, "timeline": timeline, **extra}
        event_type = "Normal" if verdict == Verdict.PASS else "Warning"
        await self.transition(phase, reason, message, extra=patch, event_type=event_type)
