"""One reconcile of a schedule as a pure function: given the spec, the status, the schedule's
ChaosDemos and the clock, what to create, what to delete, and the new status.

Kubernetes CronJob's rules, with the skipped runs recorded rather than silent:
- only the newest due run time is started; older ones missed while the controller was away are
  counted as skipped;
- a run older than ``startingDeadlineSeconds`` is skipped;
- ``Forbid`` skips a run while another is active; ``Replace`` deletes the active ones first;
- finished runs beyond the history limits (successful = verdict Pass) are deleted, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.operator.model import TERMINAL_PHASES, Verdict
from controller.schedule.cadence import Cadence
from controller.schedule.model import (
    RUNS_SHOWN,
    ConcurrencyPolicy,
    RunRecord,
    ScheduleSpec,
    ScheduleStatus,
    SkippedRun,
)

MISSED_RUNS_LOOKED_AT = 100


@dataclass(frozen=True)
class Child:
    """A ChaosDemo this schedule created, as the planner needs it."""

    name: str
    scheduled_at: float
    phase: str | None = None
    verdict: str | None = None
    deleting: bool = False
    time_to_detect_seconds: float | None = None
    time_to_recover_seconds: float | None = None

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def active(self) -> bool:
        return not self.finished and not self.deleting

    def record(self) -> RunRecord:
        return RunRecord(
            name=self.name,
            scheduledAt=self.scheduled_at,
            phase=self.phase,
            verdict=self.verdict,
            timeToDetectSeconds=self.time_to_detect_seconds,
            timeToRecoverSeconds=self.time_to_recover_seconds,
        )


@dataclass
class Plan:
    create: float | None = None  # the run time to start a ChaosDemo for
    delete: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    status: ScheduleStatus = field(default_factory=ScheduleStatus)


def child_name(schedule: str, scheduled_at: float) -> str:
    """Deterministic: a controller that crashed after creating a run finds it (409), never
    creates it twice."""
    return f"{schedule}-{int(scheduled_at)}"


def _skip(status: ScheduleStatus, at: float, reason: str, message: str, count: int = 1) -> None:
    status.skipped = [SkippedRun(scheduledAt=at, reason=reason, message=message), *status.skipped][
        :RUNS_SHOWN
    ]
    status.runs_skipped += count


def _prune(spec: ScheduleSpec, children: list[Child]) -> list[str]:
    finished = sorted((c for c in children if c.finished and not c.deleting), key=lambda c: -c.scheduled_at)
    passed = [c for c in finished if c.verdict == Verdict.PASS]
    failed = [c for c in finished if c.verdict != Verdict.PASS]
    return [c.name for c in passed[spec.successful_runs_history_limit :]] + [
        c.name for c in failed[spec.failed_runs_history_limit :]
    ]


def plan(
    name: str,
    spec: ScheduleSpec,
    cadence: Cadence,
    status: ScheduleStatus,
    children: list[Child],
    *,
    now: float,
    created_at: float,
    generation: int | None = None,
) -> Plan:
    out = Plan(status=status.model_copy(deep=True))
    st = out.status
    st.observed_generation = generation
    st.valid, st.reason = True, "Scheduled"
    active = [c for c in children if c.active]

    if spec.suspend:
        st.next_schedule_time = None
        st.reason, st.message = "Suspended", "suspended: no runs start until spec.suspend is false"
    else:
        due, older = cadence.due(st.last_schedule_time or created_at, now, MISSED_RUNS_LOOKED_AT)
        if due:
            at = due[-1]
            missed = older + len(due) - 1
            if missed:
                _skip(
                    st,
                    due[-2] if len(due) > 1 else at,
                    "Missed",
                    f"{missed} run(s) missed while the controller was away",
                    missed,
                )
            deadline = spec.starting_deadline_seconds
            if deadline is not None and now - at > deadline:
                message = (
                    f"run due at {at:.0f} is {now - at:.0f}s late, past startingDeadlineSeconds {deadline}"
                )
                _skip(st, at, "MissedDeadline", message)
                out.events.append(("Warning", "MissedDeadline", message))
            elif active and spec.concurrency_policy == ConcurrencyPolicy.FORBID:
                names = ", ".join(c.name for c in active)
                message = f"run skipped: {names} still running (concurrencyPolicy Forbid)"
                _skip(st, at, "Forbidden", message)
                out.events.append(("Normal", "RunSkipped", message))
            else:
                if active and spec.concurrency_policy == ConcurrencyPolicy.REPLACE:
                    out.delete += [c.name for c in active]
                    out.events.append(
                        (
                            "Normal",
                            "RunReplaced",
                            f"deleting {', '.join(c.name for c in active)} (concurrencyPolicy Replace)",
                        )
                    )
                    active = []
                out.create = at
                st.runs_created += 1
                active.append(Child(child_name(name, at), at))
                out.events.append(("Normal", "RunCreated", f"created {child_name(name, at)}"))
            st.last_schedule_time = at
        st.next_schedule_time = cadence.next_after(max(now, st.last_schedule_time or created_at))
        st.message = f"{len(active)} active"

    out.delete += [n for n in _prune(spec, children) if n not in out.delete]
    st.active = [c.name for c in active]
    st.active_count = len(active)
    kept = [c for c in children if c.name not in out.delete]
    shown = sorted(kept, key=lambda c: -c.scheduled_at)[:RUNS_SHOWN]
    st.last_runs = [c.record() for c in shown]
    st.last_verdict = next((c.verdict for c in shown if c.finished), status.last_verdict)
    return out


def invalid(status: ScheduleStatus, reason: str, message: str, generation: int | None) -> ScheduleStatus:
    st = status.model_copy(deep=True)
    st.valid, st.reason, st.message = False, reason, message
    st.observed_generation = generation
    st.next_schedule_time = None
    return st
