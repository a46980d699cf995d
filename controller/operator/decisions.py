"""The drill's decisions as pure functions (the recovery moments are in ``recovery_moments``): no I/O, no clock of their own. The steps in
``drill.py`` gather facts, call these, and write what they return; unit tests call them alone.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.operator.model import DrillSpec, Phase, Verdict
from controller.operator.state import DrillMetrics, DrillStatus, SourceStatus

# A temporary failure is retried after 0.5, 1, 2, 4, 5, 5 ... seconds.
RETRY_FIRST_DELAY = 0.5
RETRY_MAX_DELAY = 5.0
# How long preflight may keep failing temporarily (PD unreachable, API server restarting)
# before the run ends with Error and frees its target.
PREFLIGHT_RETRY_BUDGET = 60.0
# The diagnosis has this long after detection (Claude: 30 s x 3 tries, plus settling).
DIAGNOSIS_BUDGET = 180.0


# -- victim choice and safety ---------------------------------------------------------------------
def choose_victim(candidates: Sequence[str], named: str, seed: str) -> str:
    """The named pod, or one chosen at random but repeatably: a restarted controller, given the
    same run (seed), picks the same pod."""
    if named:
        if named not in candidates:
            raise ValueError(f"pod {named!r} is not among the candidates")
        return named
    if not candidates:
        raise ValueError("no candidates")
    return random.Random(seed).choice(sorted(candidates))


# Sets of victims tried for a ``count`` above one before the drill is refused (each try is one
# pass over PD's regions).
MAX_VICTIM_SETS_TRIED = 200


def choose_victims(
    candidates: Sequence[str], count: int, seed: str, losing: Callable[[frozenset[str]], list[int]]
) -> tuple[list[str], tuple[tuple[str, ...], list[int]] | None]:
    """``count`` pods whose loss together leaves every region its Raft majority, tried in a
    repeatable random order (a restarted controller picks the same set). Returns the set, or an
    empty list and the first set tried with the regions it would cost."""
    order = sorted(candidates)
    random.Random(seed).shuffle(order)
    first_refusal: tuple[tuple[str, ...], list[int]] | None = None
    for tried, combo in enumerate(itertools.combinations(order, count)):
        if tried >= MAX_VICTIM_SETS_TRIED:
            break
        lost = losing(frozenset(combo))
        if not lost:
            return sorted(combo), None
        first_refusal = first_refusal or (tuple(sorted(combo)), lost)
    return [], first_refusal


def was_killed(status: DrillStatus) -> bool:
    """Could this run have deleted its victim (or stopped its store)? True from the moment the
    destructive call may have been sent: injectionSentAt is written, behind the object's
    resourceVersion, right before it (injectedAt after it). A run stopped before that point
    changed nothing, and its teardown must not wait for a recovery that cannot come."""
    t = status.timeline
    return status.victim is not None and (t.injection_sent_at is not None or t.injected_at is not None)


# -- the end of a run ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    phase: Phase
    verdict: Verdict
    reason: str
    message: str


def headline_detection(sources: Sequence[SourceStatus]) -> tuple[float | None, str]:
    """Time-to-detect of the drill and who set it: the last of the required sources to detect
    (the fault counts as detected once everyone who had to notice did), or, with no required
    source, the first of any."""
    required = [s for s in sources if s.required]
    pool = required or list(sources)
    detected = [s for s in pool if s.state == "Detected" and s.ttd_seconds is not None]
    if not detected or (required and len(detected) < len(required)):
        return None, ""
    pick = (
        max(detected, key=lambda s: s.ttd_seconds or 0.0)
        if required
        else min(detected, key=lambda s: s.ttd_seconds or 0.0)
    )
    return pick.ttd_seconds, pick.name


def verdict(
    spec: DrillSpec,
    metrics: DrillMetrics,
    *,
    recovered: bool,
    detail: str = "",
    sources: Sequence[SourceStatus] = (),
) -> Outcome:
    """The verdict of a run that injected its fault and has finished watching."""
    ttr = metrics.time_to_recover_seconds
    slo = spec.detection.expect_within_seconds
    required = [s for s in sources if s.required]
    missed = [s for s in required if s.state in ("Missed", "Watching")]
    broken = [s for s in required if s.state == "Error"]
    if sources:
        ttd, by = headline_detection(sources)
    else:
        ttd, by = metrics.time_to_detect_seconds, "tickets"
    if missed and not (len(missed) == 1 and missed[0].type == "tickets" and len(required) == 1):
        names = "; ".join(f"{s.name}: {s.why or 'no answer'}" for s in missed)
        return Outcome(Phase.FAILED, Verdict.UNDETECTED, "Undetected", f"not detected by {names}")
    if ttd is None and not broken:
        return Outcome(
            Phase.FAILED,
            Verdict.UNDETECTED,
            "Undetected",
            f"the monitor never ticketed the fault within {spec.detection.timeout_seconds}s",
        )
    if broken:
        names = "; ".join(f"{s.name}: {s.why}" for s in broken)
        return Outcome(
            Phase.FAILED,
            Verdict.ERROR,
            "DetectionSourceError",
            f"a required detection source failed: {names}",
        )
    assert ttd is not None
    if not recovered:
        return Outcome(
            Phase.FAILED,
            Verdict.FAIL,
            "RecoveryTimeout",
            f"detected in {ttd:.1f}s but {'PD' if spec.fault.action == 'pd-leader-kill' else 'the store'} was not whole again within "
            f"{spec.recovery.timeout_seconds}s{': ' + detail if detail else ''}",
        )
    who = f" by {by}" if sources and len(sources) > 1 else ""
    if ttd > slo:
        return Outcome(
            Phase.FAILED,
            Verdict.FAIL,
            "DetectionSLOMissed",
            f"detected{who} in {ttd:.1f}s, over the {slo}s SLO; recovered",
        )
    recovered_in = f" in {ttr:.1f}s" if ttr is not None else ""
    return Outcome(
        Phase.COMPLETED,
        Verdict.PASS,
        "Passed",
        f"detected{who} in {ttd:.1f}s (SLO {slo}s) and recovered{recovered_in}",
    )


def after_kill_deadline(spec: DrillSpec, injected_at: float) -> float:
    """No run holds its target past this: detection and recovery have each had their timeout,
    the diagnosis its budget, and leaders their wait."""
    return (
        injected_at
        + spec.fault.outage_seconds
        + max(spec.detection.timeout_seconds, spec.recovery.timeout_seconds)
        + spec.recovery.wait_for_leaders_seconds
        + DIAGNOSIS_BUDGET
    )


def lease_seconds(spec: DrillSpec) -> int:
    """How long a target lock may be held by one run: preflight's waiting plus everything after
    the kill. A holder past it is treated as gone."""
    return int(PREFLIGHT_RETRY_BUDGET + spec.recovery.timeout_seconds + after_kill_deadline(spec, 0.0))


def retry_delay(attempt: int) -> float:
    """Seconds before the ``attempt``-th retry (1-based) of a temporary failure."""
    return float(min(RETRY_MAX_DELAY, RETRY_FIRST_DELAY * 2 ** max(0, attempt - 1)))


def next_run_needed(status: DrillStatus, generation: int) -> bool:
    """A settled drill whose spec changed since its last run starts a new run."""
    return status.phase is None or (
        status.phase in (Phase.COMPLETED, Phase.FAILED, Phase.ABORTED)
        and status.observed_generation != generation
    )
