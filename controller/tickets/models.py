"""What a ticket is (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from controller.severity import Severity


class TicketStatus(StrEnum):
    OPEN = "open"
    DIAGNOSED = "diagnosed"
    RESOLVED = "resolved"


class Observation(BaseModel):
    """One piece of evidence the monitor saw: which signal, from which source, when, what."""

    signal: str
    source: str  # "prometheus", "pd", "probe"
    at: float
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)


class Ticket(BaseModel):
    id: int
    cluster: str
    invariant: str
    subject: str
    store_id: int | None = None
    store_address: str | None = None
    pod: str | None = None
    severity: Severity
    status: TicketStatus
    opened_at: float
    last_seen_at: float
    resolved_at: float | None = None
    signals: list[str] = Field(default_factory=list)
    observations: list[Observation] = Field(default_factory=list)
    diagnosis: dict[str, Any] | None = None
    diagnosis_markdown: str | None = None
    diagnoser: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    diagnosis_meta: dict[str, Any] | None = None  # tokens, latency, fallback reason
    diagnosed_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self.status != TicketStatus.RESOLVED
