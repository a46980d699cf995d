"""What a diagnosis is given: the ticket and the cluster's evidence, as typed data.

The operator gathers these from PD, Prometheus, Kubernetes and the ticket store; the scenario
suite writes them by hand. ``None`` means the source could not be asked (PD down, no
Prometheus), which is different from an empty answer.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from controller.pd.models import HealthMember, RegionCheck, StoreInfo
from controller.tickets.models import Ticket


class MetricSummary(BaseModel):
    """One series around the incident, summarised: never the raw points."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    before: float | None = None
    after: float | None = None
    min: float | None = None
    max: float | None = None
    delta: float | None = None
    points: int = 0


class DrillRecord(BaseModel):
    """What the controller injected. Withheld from the diagnoser unless the drill opts out of
    blind mode (``diagnosis.blind: false``)."""

    action: str
    pod: str
    namespace: str
    store_id: int | None = None
    injected_at: float


class KubeEvent(BaseModel):
    type: str = "Normal"
    reason: str = ""
    message: str = ""
    object: str = ""
    count: int = 1
    last_seen: float | None = None


class PodState(BaseModel):
    """A TiKV pod as ``kubectl get pod`` shows it: enough for a restart history."""

    name: str
    phase: str = "Running"
    ready: bool = True
    created_at: float | None = None
    node: str = ""
    image: str = ""  # the TiKV container's image
    restarts: int = 0
    waiting_reason: str = ""  # e.g. CrashLoopBackOff, ContainerCreating
    last_termination_reason: str = ""  # e.g. OOMKilled, Error
    last_exit_code: int | None = None
    last_finished_at: float | None = None


class PDView(BaseModel):
    """PD's own health: its members and the current leader."""

    members: list[HealthMember] = Field(default_factory=list)
    leader: str | None = None


class DiagnosisInput(BaseModel):
    ticket: Ticket
    stores: list[StoreInfo] | None = None
    regions: RegionCheck | None = None
    max_replicas: int | None = None  # PD's replication.max-replicas; None: PD's config not read
    pd: PDView | None = None
    metrics: list[MetricSummary] = Field(default_factory=list)
    metrics_available: bool = True  # False: Prometheus could not be asked
    events: list[KubeEvent] = Field(default_factory=list)
    pods: list[PodState] = Field(default_factory=list)
    recent_tickets: list[Ticket] = Field(default_factory=list)
    drill: DrillRecord | None = None
    now: float = Field(default_factory=time.time)
