"""Drill schedules as pure functions: cadences (cron in a time zone, macros, @every) and the
planner's CronJob rules (missed runs, starting deadline, Forbid, Replace, suspend, history)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller.schedule.cadence import CadenceError, parse
from controller.schedule.model import ScheduleSpec, ScheduleStatus
from controller.schedule.plan import Child, child_name, plan

T0 = 1_800_000_000.0  # a whole minute (divisible by 60)


def test_cron_runs_at_wall_clock_time_in_its_zone_across_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    cadence = parse("0 3 * * *", "Europe/Berlin")
    before_switch = datetime(2026, 3, 27, 12, 0, tzinfo=berlin).timestamp()  # DST starts 29 March, 02:00
    first = cadence.next_after(before_switch)
    second = cadence.next_after(first)
    assert (
        datetime.fromtimestamp(first, berlin).hour == 3 and datetime.fromtimestamp(second, berlin).hour == 3
    )
    assert second - first == 23 * 3600  # the night the clocks went forward is an hour short


def test_macros_every_and_seconds() -> None:
    assert parse("@hourly").next_after(T0) == T0 + 3600
    every = parse("@every 1m30s", anchor=T0)
    assert every.due(T0, T0 + 300, 10) == ([T0 + 90, T0 + 180, T0 + 270], 0)
    assert parse("*/10 * * * * *").due(T0, T0 + 65, 3) == ([T0 + 40, T0 + 50, T0 + 60], 3)


@pytest.mark.parametrize(
    ("schedule", "zone", "says"),
    [
        ("61 * * * *", "", "invalid cron expression"),
        ("0 0 31 2 *", "", "invalid cron expression"),
        ("@often", "", "unknown macro"),
        ("@every 2s", "", "shorter than 5s"),
        ("@every soon", "", "needs a duration"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_schedules_say_what_is_wrong(schedule: str, zone: str, says: str) -> None:
    with pytest.raises(CadenceError, match=says):
        parse(schedule, zone)


def _spec(**kw: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"schedule": "@every 60s", "template": {"spec": {}}, **kw})


def _plan(spec: ScheduleSpec, children: list[Child], now: float, status: ScheduleStatus | None = None):  # type: ignore[no-untyped-def]
    return plan(
        "nightly",
        spec,
        parse(spec.schedule, anchor=T0),
        status or ScheduleStatus(),
        children,
        now=now,
        created_at=T0,
    )


def test_a_due_run_is_created_once_and_the_next_is_announced() -> None:
    p = _plan(_spec(), [], T0 + 61)
    assert p.create == T0 + 60 and p.status.last_schedule_time == T0 + 60
    assert p.status.next_schedule_time == T0 + 120 and p.status.active == [child_name("nightly", T0 + 60)]
    again = _plan(_spec(), [Child(child_name("nightly", T0 + 60), T0 + 60)], T0 + 62, p.status)
    assert again.create is None  # the same run time is never started twice
    assert _plan(_spec(), [], T0 + 59).create is None


def test_forbid_skips_and_records_while_a_run_is_active() -> None:
    running = Child("nightly-1", T0 + 60, phase="Detecting")
    p = _plan(
        _spec(concurrencyPolicy="Forbid"), [running], T0 + 121, ScheduleStatus(lastScheduleTime=T0 + 60)
    )
    assert p.create is None and p.delete == []
    assert p.status.skipped[0].reason == "Forbidden" and "nightly-1" in p.status.skipped[0].message
    assert p.status.runs_skipped == 1 and p.status.last_schedule_time == T0 + 120


def test_replace_deletes_the_active_run_and_starts_the_new_one() -> None:
    running = Child("nightly-1", T0 + 60, phase="Recovering")
    p = _plan(
        _spec(concurrencyPolicy="Replace"), [running], T0 + 121, ScheduleStatus(lastScheduleTime=T0 + 60)
    )
    assert p.delete == ["nightly-1"] and p.create == T0 + 120


def test_allow_overlaps() -> None:
    running = Child("nightly-1", T0 + 60, phase="Detecting")
    p = _plan(_spec(concurrencyPolicy="Allow"), [running], T0 + 121, ScheduleStatus(lastScheduleTime=T0 + 60))
    assert p.create == T0 + 120 and p.delete == [] and p.status.active_count == 2


def test_suspend_starts_nothing_and_announces_no_next_run() -> None:
    p = _plan(_spec(suspend=True), [], T0 + 3600)
    assert p.create is None and p.status.next_schedule_time is None and p.status.reason == "Suspended"


def test_missed_runs_start_only_the_newest_and_a_deadline_skips_a_late_one() -> None:
    p = _plan(_spec(), [], T0 + 600 + 5)  # ten run times passed while the controller was away
    assert p.create == T0 + 600 and p.status.runs_skipped == 9 and p.status.skipped[0].reason == "Missed"
    late = _plan(_spec(startingDeadlineSeconds=30), [], T0 + 60 + 45)
    assert late.create is None and late.status.skipped[0].reason == "MissedDeadline"
    assert late.events[0][:2] == ("Warning", "MissedDeadline")


def test_history_limits_prune_the_oldest_finished_runs_by_outcome() -> None:
    runs = [Child(f"nightly-{i}", T0 + 60 * i, phase="Completed", verdict="Pass") for i in range(1, 5)] + [
        Child(f"nightly-f{i}", T0 + 60 * i + 1, phase="Failed", verdict="Fail") for i in range(1, 4)
    ]
    spec = _spec(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    p = _plan(spec, runs, T0 + 250, ScheduleStatus(lastScheduleTime=T0 + 240))
    assert sorted(p.delete) == ["nightly-1", "nightly-2", "nightly-f1", "nightly-f2"]
    assert [r.name for r in p.status.last_runs] == ["nightly-4", "nightly-f3", "nightly-3"]
    assert p.status.last_verdict == "Pass"  # the newest finished run


def test_a_schedule_is_looked_at_only_when_a_run_is_due_or_something_changed() -> None:
    """The LIST behind a look happens only when needed."""
    from controller.schedule.model import ScheduleStatus
    from controller.schedule.pacing import LOOK_AT_LEAST_EVERY, SchedulePacing

    pacing = SchedulePacing()
    key = ("uid-1", 1, "ns", "nightly")
    now = 1_000.0
    assert pacing.due(*key, now), "never looked at: look"
    pacing.looked(*key, ScheduleStatus.model_validate({"nextScheduleTime": now + 30}), now)
    assert not pacing.due(*key, now + 1) and not pacing.due(*key, now + 29.9)
    assert pacing.due(*key, now + 30), "the run is due"
    assert pacing.due("uid-1", 2, "ns", "nightly", now + 1), "the spec changed"
    pacing.child_changed("ns", "nightly")
    assert pacing.due(*key, now + 1), "one of its ChaosDemos changed"
    # Suspended (no next run) and quiet: looked at only as a backstop.
    pacing.looked(*key, ScheduleStatus.model_validate({}), now)
    assert not pacing.due(*key, now + LOOK_AT_LEAST_EVERY - 1) and pacing.due(*key, now + LOOK_AT_LEAST_EVERY)
    pacing.child_changed("ns", "other")
    assert not pacing.due(*key, now + 1), "another schedule's run is not this one's business"


async def test_a_schedule_daemon_sleeps_until_due_and_wakes_on_a_change() -> None:
    """The daemon sleeps until the next run (kopf's stop flag, with a timeout, is the clock);
    a change to one of its runs wakes it at once; a stop ends the sleep."""
    import asyncio

    from kopf._cogs.aiokits.aioenums import AsyncFlagWaiter, FlagSetter

    from controller.schedule.model import ScheduleStatus
    from controller.schedule.pacing import SchedulePacing

    pacing = SchedulePacing()
    setter: FlagSetter[object] = FlagSetter()
    stopped = AsyncFlagWaiter(setter)  # what kopf hands an async daemon
    loop = asyncio.get_running_loop()
    now = 1_000.0
    pacing.looked(
        "u", 1, "ns", "nightly", ScheduleStatus.model_validate({"nextScheduleTime": now + 0.2}), now
    )
    started = loop.time()
    await pacing.sleep("u", "ns", "nightly", stopped, now)  # type: ignore[arg-type]
    assert loop.time() - started >= 0.19, "slept until the run was due"

    pacing.looked(
        "u", 1, "ns", "nightly", ScheduleStatus.model_validate({"nextScheduleTime": now + 3600}), now
    )
    sleeping = asyncio.create_task(pacing.sleep("u", "ns", "nightly", stopped, now))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not sleeping.done(), "nothing due, nothing changed: asleep"
    pacing.child_changed("ns", "other")
    await asyncio.sleep(0.05)
    assert not sleeping.done(), "another schedule's run does not wake it"
    pacing.child_changed("ns", "nightly")
    await asyncio.wait_for(sleeping, 1.0)
    assert pacing.due("u", 1, "ns", "nightly", now + 1), "woken by a change, and the look is due"

    sleeping = asyncio.create_task(pacing.sleep("u", "ns", "nightly", stopped, now))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    setter.set()
    await asyncio.wait_for(sleeping, 1.0)
