"""The prober's targets and records."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    OK = "ok"  # answered: a value or "not found" (a read of a key nobody wrote is a success)
    ERROR = "error"  # the client gave up with an error (its own retries and back-off exhausted)
    TIMEOUT = "timeout"  # nothing within the prober's deadline


class Op(StrEnum):
    READ = "read"
    WRITE = "write"  # only under spec.impact.probe.writes, the key prefix the user gave it


class ProbeTarget(BaseModel):
    """One region and the key the prober reads (or writes) in it."""

    model_config = ConfigDict(frozen=True)

    region_id: int
    key: bytes
    op: Op = Op.READ


class ProbeRecord(BaseModel):
    """One request, as the client saw it (times: this machine's clock, seconds)."""

    model_config = ConfigDict(frozen=True)

    region_id: int
    started: float
    ended: float
    outcome: Outcome
    error: str | None = None
    op: Op = Op.READ

    @property
    def seconds(self) -> float:
        return self.ended - self.started
