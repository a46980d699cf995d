"""The ``ChaosDemoSchedule`` resource: its spec and status, typed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.operator.state import Moment

SCHEDULE_PLURAL = "chaosdemoschedules"
SCHEDULE_KIND = "ChaosDemoSchedule"
# On each ChaosDemo a schedule created: which schedule, and the run time it stands for.
SCHEDULE_LABEL = "chaos.operator.dev/schedule"
SCHEDULED_AT_ANNOTATION = "chaos.operator.dev/scheduled-at"
RUNS_SHOWN = 10  # lastRuns and skipped keep this many, newest first
# The schedule's name is a label value on its runs (at most 63 characters) and a run is named
# <schedule>-<unix seconds>: like CronJob, schedule names are at most 52 characters.
MAX_NAME_LENGTH = 52


class ConcurrencyPolicy(StrEnum):
    ALLOW = "Allow"  # runs may overlap (drills on one target still queue behind its lock)
    FORBID = "Forbid"  # a run due while another is active is skipped, and recorded
    REPLACE = "Replace"  # the active run is deleted (its finalizer restores) and the new one starts


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Template(_Model):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)


class ScheduleSpec(_Model):
    schedule: str
    time_zone: str = Field(default="", alias="timeZone")
    concurrency_policy: ConcurrencyPolicy = Field(default=ConcurrencyPolicy.FORBID, alias="concurrencyPolicy")
    suspend: bool = False
    starting_deadline_seconds: int | None = Field(default=None, alias="startingDeadlineSeconds", ge=0)
    successful_runs_history_limit: int = Field(default=3, alias="successfulRunsHistoryLimit", ge=0)
    failed_runs_history_limit: int = Field(default=1, alias="failedRunsHistoryLimit", ge=0)
    template: Template


class RunRecord(_Model):
    name: str
    scheduled_at: Moment = Field(default=None, alias="scheduledAt")
    phase: str | None = None
    verdict: str | None = None
    time_to_detect_seconds: float | None = Field(default=None, alias="timeToDetectSeconds")
    time_to_recover_seconds: float | None = Field(default=None, alias="timeToRecoverSeconds")


class SkippedRun(_Model):
    scheduled_at: Moment = Field(default=None, alias="scheduledAt")
    reason: str
    message: str


class SourceTally(_Model):
    """One detection source over the schedule's recorded drills of one fault."""

    fault: str
    source: str
    drills: int
    caught: int
    median_ttd_seconds: float | None = Field(default=None, alias="medianTTDSeconds")
    dominant_miss: str | None = Field(default=None, alias="dominantMiss")


class ScheduleStatus(_Model):
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    last_schedule_time: Moment = Field(default=None, alias="lastScheduleTime")
    next_schedule_time: Moment = Field(default=None, alias="nextScheduleTime")
    active: list[str] = Field(default_factory=list)
    active_count: int = Field(default=0, alias="activeCount")
    last_verdict: str | None = Field(default=None, alias="lastVerdict")
    last_runs: list[RunRecord] = Field(default_factory=list, alias="lastRuns")
    skipped: list[SkippedRun] = Field(default_factory=list)
    coverage: list[SourceTally] = Field(default_factory=list)
    runs_created: int = Field(default=0, alias="runsCreated")
    runs_skipped: int = Field(default=0, alias="runsSkipped")
    valid: bool = True
    reason: str = ""
    message: str = ""

    def wire(self) -> dict[str, Any]:
        """A merge patch: camelCase, times as strings; no next run is an explicit null, so a
        suspended or invalid schedule stops announcing one."""
        out = self.model_dump(by_alias=True, mode="json", exclude_none=True)
        out.setdefault("nextScheduleTime", None)
        return out
