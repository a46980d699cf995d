"""The diagnosis contract: the same output whichever diagnoser produced it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from controller.severity import Severity


class RootCauseCategory(StrEnum):
    TIKV_POD_FAILURE = "tikv_pod_failure"  # a TiKV pod died or was killed, and restarted
    TIKV_STORE_DOWN = "tikv_store_down"  # a store's process stayed away (Disconnected, then Down)
    CRASH_LOOP = "crash_loop"  # TiKV keeps failing at start (back-off, repeated restarts)
    NODE_FAILURE = "node_failure"  # the Kubernetes node under the store failed
    PD_UNAVAILABLE = "pd_unavailable"  # PD (the placement driver) unreachable or unhealthy
    PD_LEADER_LOSS = "pd_leader_loss"  # PD's leader was lost; the others elected a new one
    NETWORK_PARTITION = "network_partition"  # the store runs but PD or peers cannot reach it
    REGION_REPLICATION = "region_replication"  # regions lack healthy peers without a store failure
    RESOURCE_EXHAUSTION = "resource_exhaustion"  # disk, memory or CPU pressure
    CONFIGURATION = "configuration"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class EvidenceCitation(BaseModel):
    id: str = Field(description="An evidence id from the context, such as E3")
    why: str = Field(description="What this evidence shows for the diagnosis")


class DiagnosisOutput(BaseModel):
    summary: str = Field(description="One or two sentences a person on call reads first")
    root_cause: str = Field(description="The most likely root cause, naming the affected component")
    root_cause_category: RootCauseCategory
    severity: Severity
    confidence: Confidence
    evidence: list[EvidenceCitation] = Field(description="The evidence the diagnosis rests on, by id")
    recommended_actions: list[str]
    open_questions: list[str] = Field(description="What the evidence cannot answer")
