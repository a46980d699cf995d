"""When the victim came back, from looks at PD and the pod: pure functions, no I/O, no clock of
their own. Every moment is the source's own where it has one (PD's start_ts, the Ready
condition's transition), bounded by the looks before and after it; figures are computed from the
moments as written to the status."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.operator.state import DrillMetrics, Timeline, as_written


@dataclass(frozen=True)
class RecoveryObservation:
    """One look at the victim after the kill. Times are the sources' own where they have one."""

    seen_at: float  # when PD was asked (the store facts' moment)
    pod_ready: bool
    # The pod runs the store again: a new one under the victim's name (pod-kill), or the victim
    # with its original image back (store-outage).
    pod_back: bool
    pod_ready_since: float | None  # the Ready condition's lastTransitionTime (whole seconds)
    pod_ready_resolution: float = 1.0  # 0: the moment is exact (the controller's own swap back)
    pd_error: str | None = None  # PD could not be asked: store facts below are unknown
    store_state: str | None = None  # PD's state_name; None when PD knows no such store
    store_started: float | None = None  # PD's start_ts, else start_timestamp
    store_started_resolution: float = 1.0  # whole seconds, unless PD's start_ts says finer
    store_last_heartbeat: float | None = None
    unhealthy_regions: int | None = None  # regions with a down or pending peer on the store
    leaders: int | None = None  # regions the store leads now
    fair_leaders: int | None = None  # total leaders / Up stores: what balance settles at
    pod_seen_at_: float | None = None  # when the pod was read, if before ``seen_at``
    # When each look was asked for. An answer shows some instant between asking and answering,
    # so a moment a look did not see yet came after it was asked, not after it answered (a
    # region listing can take seconds after the store facts it follows).
    asked_at: float | None = None  # PD
    pod_asked_at: float | None = None
    # network-partition: the store is back with PD's first heartbeat after this moment (the cut
    # undone; infinite while it is not), its process never having stopped.
    reconnected_after: float | None = None
    # Beyond the victim: the cluster's health, for the drill's continuous safety check.
    other_stores_not_up: tuple[str, ...] = ()
    pd_members_unhealthy: tuple[str, ...] = ()
    regions_without_majority: tuple[int, ...] = ()

    def safety_problem(self) -> str | None:
        """Why the drill must stop now, if something beyond its own fault went wrong."""
        if self.other_stores_not_up:
            return f"another store is not Up: {', '.join(self.other_stores_not_up)}"
        if self.pd_members_unhealthy:
            return f"PD member(s) unhealthy: {', '.join(self.pd_members_unhealthy)}"
        if self.regions_without_majority:
            ids = ", ".join(str(r) for r in self.regions_without_majority[:10])
            return f"{len(self.regions_without_majority)} region(s) lost their Raft majority: {ids}"
        return None

    @property
    def pod_seen_at(self) -> float:
        return self.pod_seen_at_ if self.pod_seen_at_ is not None else self.seen_at

    def not_yet_since(self, moment: str) -> float | None:
        """A lower bound for a recovery moment (a timeline field name) this look did not see:
        when the look that would have shown it was asked for. None: that look failed, so it
        says nothing (PD did not answer)."""
        if moment == "pod_ready_at":
            return self.pod_asked_at if self.pod_asked_at is not None else self.pod_seen_at
        if self.pd_error is not None:
            return None
        return self.asked_at if self.asked_at is not None else self.seen_at

    def store_reregistered(self, injected_at: float) -> bool:
        """Up in PD with a process started after the kill (PD's start_timestamp has whole
        seconds, so a start in the kill's own second counts); a partitioned store, Up with a
        heartbeat after the cut was undone."""
        if self.reconnected_after is not None:
            return (
                self.store_state == "Up"
                and self.store_last_heartbeat is not None
                and self.store_last_heartbeat >= self.reconnected_after
            )
        return (
            self.store_state == "Up"
            and self.store_started is not None
            and self.store_started >= int(injected_at)
        )

    def regions_healthy(self) -> bool:
        return self.unhealthy_regions == 0

    def whole(self, injected_at: float) -> bool:
        """The store is whole again: its pod back and Ready, its store re-registered and Up, and no region
        with a down or pending peer on it. The recovery criterion, for recovery, abort and the
        finalizer alike."""
        return (
            self.pod_ready
            and self.pod_back
            and self.store_reregistered(injected_at)
            and self.regions_healthy()
        )

    def leaders_back(self, leaders_before: int | None) -> bool:
        """Leaders back on the store: within one of what it led before the kill, or of its fair
        share when that is smaller (PD balances to the share, not to the old count)."""
        if self.leaders is None:
            return False
        target = leaders_before if leaders_before is not None else (self.fair_leaders or 0)
        if self.fair_leaders is not None:
            target = min(target, self.fair_leaders)
        return self.leaders >= target - 1

    def describe(self) -> str:
        pod = "pod Ready" if self.pod_ready else "pod not Ready"
        if self.pd_error:
            return f"{pod}; {self.pd_error}"
        store = f"store {self.store_state or 'missing'}"
        regions = (
            ""
            if self.unhealthy_regions is None
            else f"; {self.unhealthy_regions} region(s) with a down or pending peer on it"
        )
        return f"{pod}; {store}{regions}"


def estimate_moment(event_at: float | None, not_before: float, seen_at: float, resolution: float) -> float:
    """When something happened, from the source's own timestamp (``event_at``, truncated to
    ``resolution``) narrowed by our samples: it was not true at ``not_before`` and true at
    ``seen_at``. The midpoint of what all of them allow; our sample alone when the source has no
    time or disagrees with our samples."""
    lo, hi = not_before, seen_at
    if event_at is not None:
        lo, hi = max(lo, event_at), min(hi, event_at + resolution)
    if lo > hi:
        return seen_at
    return (lo + hi) / 2


@dataclass(frozen=True)
class PDRecoveryObservation(RecoveryObservation):
    """One look after a PD leader kill: the victim's pod, PD's leader and the victim member."""

    victim_member: str = ""
    pd_leader: str | None = None  # None while PD has no leader (or did not answer)
    member_healthy: bool = False  # the victim member is back and healthy in /health

    def new_leader(self) -> bool:
        """PD names a leader elected after the kill: another member, or the victim's own member
        once its pod is the replacement (the killed process's leadership died with it)."""
        return self.pd_leader is not None and (self.pd_leader != self.victim_member or self.pod_back)

    def whole(self, injected_at: float) -> bool:
        """PD is whole again: a new leader elected, the old leader's member back (its pod
        replaced and Ready) and healthy."""
        return self.pod_ready and self.pod_back and self.new_leader() and self.member_healthy

    def describe(self) -> str:
        pod = "pod Ready" if self.pod_ready else "pod not Ready"
        if self.pd_error:
            return f"{pod}; {self.pd_error}"
        leader = f"PD leader {self.pd_leader}" if self.pd_leader else "PD has no leader"
        member = "healthy" if self.member_healthy else "not healthy"
        return f"{pod}; {leader}; member {self.victim_member} {member}"


def record_pd_recovery(
    timeline: Timeline, obs: PDRecoveryObservation, *, lower: Callable[[str], float]
) -> Timeline:
    """The PD leader kill's recovery moments, each set the first time it holds. PD's API carries no
    time for an election or a member's health: the midpoint between two looks."""
    t = timeline.model_copy()
    if t.pod_ready_at is None and obs.pod_ready and obs.pod_back:
        t.pod_ready_at = estimate_moment(
            obs.pod_ready_since, lower("pod_ready_at"), obs.pod_seen_at, obs.pod_ready_resolution
        )
    if t.pd_leader_elected_at is None and obs.pd_error is None and obs.new_leader():
        t.pd_leader_elected_at = estimate_moment(None, lower("pd_leader_elected_at"), obs.seen_at, 0.0)
    if t.pd_member_healthy_at is None and obs.pd_error is None and obs.member_healthy and obs.pod_back:
        t.pd_member_healthy_at = estimate_moment(None, lower("pd_member_healthy_at"), obs.seen_at, 0.0)
    if t.recovered_at is None and t.pod_ready_at and t.pd_leader_elected_at and t.pd_member_healthy_at:
        t.recovered_at = max(t.pod_ready_at, t.pd_leader_elected_at, t.pd_member_healthy_at)
    return t


def combined(observations: Sequence[RecoveryObservation], injected_at: float) -> RecoveryObservation:
    """Several victims (``fault.count``) seen as one: each moment holds once it holds for every
    victim, and its time is the last victim's (the pod Ready last, the store back last)."""
    if len(observations) == 1:
        return observations[0]
    obs = list(observations)
    last_ready = max(obs, key=lambda o: o.pod_ready_since or 0.0)
    # The store that decides "all re-registered": one that is not back yet, else the last back.
    deciding = next(
        (o for o in obs if not o.store_reregistered(injected_at)),
        max(obs, key=lambda o: o.store_started or 0.0),
    )

    def total(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def union(values: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        return tuple(dict.fromkeys(x for v in values for x in v))

    return RecoveryObservation(
        seen_at=max(o.seen_at for o in obs),
        pod_ready=all(o.pod_ready for o in obs),
        pod_back=all(o.pod_back for o in obs),
        pod_ready_since=None if any(o.pod_ready_since is None for o in obs) else last_ready.pod_ready_since,
        pod_ready_resolution=last_ready.pod_ready_resolution,
        pd_error=next((o.pd_error for o in obs if o.pd_error), None),
        store_state=deciding.store_state,
        store_started=deciding.store_started,
        store_started_resolution=deciding.store_started_resolution,
        store_last_heartbeat=deciding.store_last_heartbeat,
        unhealthy_regions=total([o.unhealthy_regions for o in obs]),
        leaders=total([o.leaders for o in obs]),
        fair_leaders=total([o.fair_leaders for o in obs]),
        pod_seen_at_=max(o.pod_seen_at for o in obs),
        reconnected_after=deciding.reconnected_after,
        asked_at=_earliest([o.asked_at for o in obs]),
        pod_asked_at=_earliest([o.pod_asked_at for o in obs]),
        other_stores_not_up=union([o.other_stores_not_up for o in obs]),
        pd_members_unhealthy=union([o.pd_members_unhealthy for o in obs]),
        regions_without_majority=union([o.regions_without_majority for o in obs]),
    )


def _earliest(moments: list[float | None]) -> float | None:
    """Of several looks' asking times, the one that bounds them all (the earliest)."""
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def record_recovery(
    timeline: Timeline,
    obs: RecoveryObservation,
    *,
    not_before: float,
    bounds: Mapping[str, float],
    leaders_before: int | None,
) -> Timeline:
    """The timeline with each recovery moment set the first time it holds (never moved later).

    Each moment lies after the last look that did not see it (``bounds``, by timeline field name;
    ``not_before``, the kill, when there was none) and no later than this observation.
    """
    injected_at = timeline.injected_at
    if injected_at is None:
        return timeline

    def lower(moment: str) -> float:
        return max(bounds.get(moment, not_before), injected_at)

    if isinstance(obs, PDRecoveryObservation):
        return record_pd_recovery(timeline, obs, lower=lower)
    t = timeline.model_copy()

    if t.pod_ready_at is None and obs.pod_ready and obs.pod_back:
        t.pod_ready_at = estimate_moment(
            obs.pod_ready_since, lower("pod_ready_at"), obs.pod_seen_at, obs.pod_ready_resolution
        )
    if t.store_up_at is None and obs.store_reregistered(injected_at) and obs.reconnected_after is not None:
        # A partitioned store is back with the first heartbeat PD has after the cut was undone
        # (its heartbeat's own time; a later one only when a look missed the first).
        t.store_up_at = estimate_moment(obs.store_last_heartbeat, lower("store_up_at"), obs.seen_at, 0.001)
    elif t.store_up_at is None and obs.store_reregistered(injected_at):
        # A re-registered store heartbeats as soon as it starts: the start time, at PD's
        # resolution, places the moment PD saw it back. A heartbeat within that resolution of the
        # start can only be the first one, and is finer still. A later one (the second, when the
        # look came after it, or many, when the controller was down) says nothing about the first.
        started, resolution = obs.store_started, obs.store_started_resolution
        beat = obs.store_last_heartbeat
        if beat is not None and started is not None and started <= beat < started + resolution:
            t.store_up_at = estimate_moment(beat, lower("store_up_at"), obs.seen_at, 0.001)
        else:
            t.store_up_at = estimate_moment(started, lower("store_up_at"), obs.seen_at, resolution)
    if t.regions_healthy_at is None and t.store_up_at is not None and obs.regions_healthy():
        # PD's region checks carry no time: the midpoint between two looks, not before the store.
        t.regions_healthy_at = max(
            estimate_moment(None, lower("regions_healthy_at"), obs.seen_at, 0.0), t.store_up_at
        )
    if (
        t.recovered_at is None
        and obs.whole(injected_at)
        and t.pod_ready_at
        and t.store_up_at
        and t.regions_healthy_at
    ):
        t.recovered_at = max(t.pod_ready_at, t.store_up_at, t.regions_healthy_at)
    if t.leaders_elected_at is None and obs.pd_error is None and obs.leaders is not None:
        # The victim's regions lost their leader with it; PD shows them led elsewhere once their
        # followers elected new leaders. A victim that led nothing cost no region its leader.
        if not leaders_before:
            t.leaders_elected_at = injected_at
        elif obs.leaders == 0:
            t.leaders_elected_at = estimate_moment(None, lower("leaders_elected_at"), obs.seen_at, 0.0)
    if (
        t.leaders_balanced_at is None
        and t.recovered_at is not None
        and t.leaders_elected_at is not None  # back after the election, not before it
        and obs.leaders_back(leaders_before)
    ):
        t.leaders_balanced_at = max(
            estimate_moment(None, lower("leaders_balanced_at"), obs.seen_at, 0.0), t.recovered_at
        )
    return t


def seconds_between(start: float, moment: float) -> float:
    """A figure in seconds between two moments of the status, from the moments as written (in
    milliseconds): exactly what a reader of the status computes from its timestamps."""
    return round(max(0.0, as_written(moment) - as_written(start)), 3)


def recovery_metrics(metrics: DrillMetrics, timeline: Timeline) -> DrillMetrics:
    """Each recovery figure in seconds from the kill; time-to-recover is the store whole again."""
    start = timeline.injected_at
    if start is None:
        return metrics

    def since(moment: float | None) -> float | None:
        return None if moment is None else seconds_between(start, moment)

    m = metrics.model_copy()
    m.pod_ready_seconds = since(timeline.pod_ready_at)
    m.store_up_seconds = since(timeline.store_up_at)
    m.regions_healthy_seconds = since(timeline.regions_healthy_at)
    m.leaders_balanced_seconds = since(timeline.leaders_balanced_at)
    m.time_to_recover_seconds = since(timeline.recovered_at)
    m.time_to_recover = seconds_text(m.time_to_recover_seconds)
    return m


def seconds_text(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}s"
