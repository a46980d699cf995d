"""ChaosDemoSchedule end to end on the sandbox: runs on a short cadence, history limits, suspend,
Forbid (skip recorded), Replace (the active run deleted and restored), deleting the schedule
deletes its runs (their finalizers restore), and clear errors for a bad cadence or template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.drills import DrillEnv, PodHistory, wait_for

pytestmark = pytest.mark.integration
LABEL = "chaos.operator.dev/schedule"


def _apply_schedule(env: DrillEnv, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "chaos.operator.dev/v1alpha1",
        "kind": "ChaosDemoSchedule",
        "metadata": {"name": name},
        "spec": spec,
    }
    env.kubectl("apply", "-n", env.ns, "-f", "-", input=json.dumps(body))


def _schedule(env: DrillEnv, name: str) -> dict[str, Any]:
    out = env.kubectl("get", "chaosdemoschedule", name, "-n", env.ns, "-o", "json").stdout
    return json.loads(out)


def _status(env: DrillEnv, name: str) -> dict[str, Any]:
    return _schedule(env, name).get("status") or {}


def _runs(env: DrillEnv, name: str) -> list[dict[str, Any]]:
    out = env.kubectl("get", "chaosdemos", "-n", env.ns, "-l", f"{LABEL}={name}", "-o", "json").stdout
    return json.loads(out)["items"]


def _wait(env: DrillEnv, name: str, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    """Wait until ``predicate(status)`` holds; on a timeout, say what the schedule and its runs
    looked like."""
    try:
        return wait_for(lambda: (st := _status(env, name)) and predicate(st) and st, timeout, what)  # type: ignore[no-any-return]
    except AssertionError as exc:
        runs = {r["metadata"]["name"]: (r.get("status") or {}).get("phase") for r in _runs(env, name)}
        log = env.controller.log_tail(60) if env.controller else ""
        raise AssertionError(
            f"{exc}\nstatus: {_status(env, name)}\nruns: {runs}\ncontroller:\n{log}"
        ) from None


def test_runs_history_limits_suspend_and_errors(drill_env: DrillEnv) -> None:
    env = drill_env
    _apply_schedule(
        env,
        "quick",
        {
            "schedule": "@every 6s",
            "concurrencyPolicy": "Allow",
            "successfulRunsHistoryLimit": 2,
            "template": {
                "labels": {"team": "sre"},
                "spec": {"safety": {"dryRun": True}, "target": {"pod": "tikv-0"}},
            },
        },
    )
    uid = _schedule(env, "quick")["metadata"]["uid"]
    _wait(env, "quick", lambda st: st.get("runsCreated", 0) >= 4, 60, "four runs")
    st = _status(env, "quick")
    assert (
        st["valid"] is True
        and st["lastVerdict"] == "Pass"
        and st["nextScheduleTime"] > st["lastScheduleTime"]
    )
    wait_for(lambda: len(_runs(env, "quick")) <= 2, 20, "history pruned to two runs")
    for run in _runs(env, "quick"):
        assert run["metadata"]["labels"]["team"] == "sre"
        assert [r["uid"] for r in run["metadata"]["ownerReferences"]] == [uid]
    row = env.kubectl("get", "chaosdemoschedules", "-n", env.ns, "--no-headers").stdout.split()
    assert row[:3] == ["quick", "@every", "6s"] and "Pass" in row, row

    env.kubectl(
        "patch", "chaosdemoschedule", "quick", "-n", env.ns, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    _wait(env, "quick", lambda st: st.get("reason") == "Suspended", 10, "suspended")
    created = _status(env, "quick")["runsCreated"]
    import time

    time.sleep(13)  # two run times pass
    st = _status(env, "quick")
    assert st["runsCreated"] == created and "nextScheduleTime" not in st, st

    _apply_schedule(env, "broken", {"schedule": "61 * * * *", "template": {"spec": {}}})
    st = _wait(env, "broken", lambda st: st.get("reason") == "InvalidSchedule", 10, "InvalidSchedule")
    assert st["valid"] is False and "invalid cron expression" in st["message"], st
    _apply_schedule(
        env,
        "badtemplate",
        {"schedule": "@every 5s", "template": {"spec": {"detection": {"timeoutSeconds": -5}}}},
    )
    st = _wait(env, "badtemplate", lambda st: st.get("reason") == "InvalidTemplate", 10, "InvalidTemplate")
    assert "timeoutSeconds" in st["message"] and _runs(env, "badtemplate") == [], st
    refused = env.kubectl(
        "apply",
        "-n",
        env.ns,
        "-f",
        "-",
        check=False,
        input=json.dumps(
            {
                "apiVersion": "chaos.operator.dev/v1alpha1",
                "kind": "ChaosDemoSchedule",
                "metadata": {"name": "x" * 53},
                "spec": {"schedule": "@daily", "template": {"spec": {}}},
            }
        ),
    )
    assert refused.returncode != 0 and "at most 52 characters" in refused.stderr


def test_forbid_then_replace_then_delete_restores(drill_env: DrillEnv) -> None:
    env = drill_env
    env.stop_monitor()  # no ticket: each run stays in Detecting until its 25 s timeout
    spec = {
        "schedule": "*/8 * * * * *",  # cron, six fields (seconds first), in a time zone
        "timeZone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "template": {
            "spec": {
                "target": {"pod": "tikv-1"},
                "detection": {"timeoutSeconds": 25, "expectWithinSeconds": 10},
                "recovery": {"waitForLeadersSeconds": 0},
            }
        },
    }
    with PodHistory(env.cluster) as history:
        _apply_schedule(env, "nightly", spec)
        st = _wait(env, "nightly", lambda st: st.get("skipped"), 30, "a skip")
        first = st["active"][0]
        assert st["skipped"][0]["reason"] == "Forbidden" and first in st["skipped"][0]["message"], st
        assert st["runsCreated"] == 1 and [r["metadata"]["name"] for r in _runs(env, "nightly")] == [first]

        env.kubectl(
            "patch",
            "chaosdemoschedule",
            "nightly",
            "-n",
            env.ns,
            "--type=merge",
            "-p",
            '{"spec":{"concurrencyPolicy":"Replace"}}',
        )
        st = _wait(env, "nightly", lambda st: st.get("runsCreated") == 2, 20, "the replacing run")
        assert first not in st["active"]
        wait_for(
            lambda: first not in [r["metadata"]["name"] for r in _runs(env, "nightly")],
            60,
            "replaced run gone",
        )
        # The replaced run's record outlives its object: the schedule's coverage tallies it
        # (no monitor runs, so its ticket source caught nothing).
        st = _wait(env, "nightly", lambda st: st.get("coverage"), 30, "the replaced run in the coverage")
        [tickets] = [c for c in st["coverage"] if c["source"] == "tickets"]
        assert tickets["fault"] == "pod-kill" and tickets["drills"] >= 1 and tickets["caught"] == 0, st

        env.kubectl("delete", "chaosdemoschedule", "nightly", "-n", env.ns)
        wait_for(lambda: _runs(env, "nightly") == [], 90, "the schedule's runs deleted with it")
        wait_for(lambda: env.ready_pods() == 3, 60, "every TiKV pod back")
    assert 1 <= history.replaced().get("tikv-1", 0) <= 2 and set(history.replaced()) == {"tikv-1"}
    events = env.kubectl(
        "get", "events", "-n", env.ns, "--field-selector", "involvedObject.kind=ChaosDemoSchedule"
    ).stdout
    assert "RunSkipped" in events and "RunReplaced" in events and "RunCreated" in events
