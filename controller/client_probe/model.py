"""The prober's targets and records."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Outcome(StrEnum):
    OK = "ok"  # answered: a value or "not found" (a read of a key nobody wrote is a success)
    ERROR = "error"  # the client gave up with an error (its own retries and back-off exhausted)
    TIMEOUT = "timeout"  # nothing within the prober's deadline


class ProbeTarget(BaseModel):
    """One region and the key the prober reads in it."""

    model_config = ConfigDict(frozen=True)

    region_id: int
    key: bytes


class ProbeRecord(BaseModel):
    """One request, as the client saw it (times: this machine's clock, seconds)."""

    model_config = ConfigDict(frozen=True)

    region_id: int
    started: float
    ended: float
    outcome: Outcome
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started
