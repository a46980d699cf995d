"""The ChaosDemo controller end to end: real API server, StatefulSet controller, kwok, the
emulator, Prometheus, the monitor and the controller, all processes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from controller.diagnosis.evidence import PROMPT_VERSION
from controller.operator.crashpoints import POINTS
from controller.timefmt import parse_rfc3339
from tests.support.drills import DrillEnv, PodHistory, wait_for

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"Completed", "Failed", "Aborted"}


def test_apply_example_drill_passes(drill_env: DrillEnv) -> None:
    env = drill_env
    with PodHistory(env.cluster) as history:
        env.kubectl("apply", "-n", env.ns, "-f", str(REPO_ROOT / "chaosdemo.yaml"))
        st = env.wait_phase("tikv-pod-kill", TERMINAL, timeout=90)
    assert st["phase"] == "Completed" and st["verdict"] == "Pass", st
    victim = st["victim"]
    assert history.replaced() == {victim["pod"]: 1}, "exactly one pod was killed, once"
    assert victim["storeId"] >= 1 and victim["uid"] and victim["node"]
    assert st["incident"]["ticketId"] >= 1 and st["incident"]["detectedBy"] == "monitor"
    # TTD is the kill to the moment the monitor recorded its ticket (its own clock, no clamp).
    ticket_opened = _ticket_opened_at(env, st["incident"]["ticketId"])
    assert st["metrics"]["timeToDetectSeconds"] == pytest.approx(
        ticket_opened - parse_rfc3339(st["timeline"]["injectedAt"]), abs=0.005
    ), (st["metrics"], st["timeline"], ticket_opened)
    assert st["metrics"]["timeToRecoverSeconds"] >= st["metrics"]["timeToDetectSeconds"]
    # Blind by default: diagnosed from the cluster's evidence alone, and still right.
    assert st["diagnosis"]["blind"] is True and st["diagnosis"]["promptVersion"] == PROMPT_VERSION
    assert st["diagnosis"]["rootCauseCategory"] == "tikv_pod_failure"
    assert st["diagnosis"]["matchesInjectedFault"] is True
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Selected": "True",
        "Injected": "True",
        "Detected": "True",
        "Diagnosed": "True",
        "Recovered": "True",
    }
    for key in (
        "startedAt",
        "injectedAt",
        "detectedAt",
        "diagnosedAt",
        "podReadyAt",
        "storeUpAt",
        "completedAt",
    ):
        assert key in st["timeline"], key

    row = env.kubectl("get", "chaosdemos", "-n", env.ns, "--no-headers").stdout.split()
    assert row[:5] == ["tikv-pod-kill", "Completed", "Pass", "pod-kill", victim["pod"]]
    assert row[5].endswith("s") and row[6].endswith("s") and row[7] == "tikv_pod_failure"
    described = env.kubectl("describe", "chaosdemo", "tikv-pod-kill", "-n", env.ns).stdout
    for reason in (
        "Accepted",
        "TargetLocked",
        "VictimSelected",
        "PodKilled",
        "Detected",
        "Diagnosed",
        "Passed",
    ):
        assert reason in described, f"Event {reason} missing from describe:\n{described}"


def _ticket_opened_at(env: DrillEnv, ticket_id: int) -> float:
    with sqlite3.connect(env.db_path) as db:
        [(opened_at,)] = db.execute("SELECT opened_at FROM tickets WHERE id = ?", (ticket_id,))
    return float(opened_at)


def test_guards_refuse_and_dry_run_deletes_nothing(drill_env: DrillEnv) -> None:
    env = drill_env
    cp = env.cluster.control_plane
    other_ns = f"{env.ns}-closed"
    cp.kubectl("create", "namespace", other_ns)
    with PodHistory(env.cluster) as history:
        env.drill("no-pods", {"target": {"selector": {"matchLabels": {"app": "nothing-here"}}}})
        env.drill("not-opted-in", {"target": {"namespace": other_ns}})
        env.drill("dry", {"safety": {"dryRun": True}})
        env.drill("named-missing", {"target": {"pod": "tikv-9"}})
        for name, reason in (
            ("no-pods", "NoMatchingPods"),
            ("not-opted-in", "NamespaceNotOptedIn"),
            ("named-missing", "NamedPodNotFound"),
        ):
            st = env.wait_phase(name, TERMINAL)
            assert (st["phase"], st["verdict"], st["reason"]) == ("Failed", "Error", reason), st
            # Consent is checked at admission, before any Lease; the rest by preflight.
            admitted = reason != "NamespaceNotOptedIn"
            assert st["message"].startswith("preflight refused" if admitted else "spec.target.namespace:"), st
        dry = env.wait_phase("dry", TERMINAL)
        assert (dry["phase"], dry["verdict"], dry["reason"]) == ("Completed", "Pass", "DryRun")
        assert dry["victim"]["pod"].startswith("tikv-") and "would kill" in dry["message"]

        # An open ticket on the cluster: refuse (the monitor's ticket store is the real file).
        import asyncio

        from controller.tickets import TicketDB
        from controller.tickets.models import Severity

        async def open_ticket() -> int:
            async with TicketDB(env.db_path) as db:
                t, _ = await db.open_or_update(
                    cluster=env.cluster.ticket_cluster,
                    invariant="pd_unhealthy",
                    subject="test/stale",
                    severity=Severity.LOW,
                    signals=["pd_unhealthy"],
                    observations=[],
                )
                return t.id

        # The monitor owns its cluster's tickets and would resolve this one within a second
        # (nothing fires for it): pause it while the ticket stands for an unresolved incident.
        env.stop_monitor()
        ticket_id = asyncio.run(open_ticket())
        env.drill("open-ticket", {})
        st = env.wait_phase("open-ticket", TERMINAL)
        assert st["reason"] == "OpenTicket" and f"#{ticket_id}" in st["message"]

        async def resolve() -> None:
            async with TicketDB(env.db_path) as db:
                await db.resolve(ticket_id)

        asyncio.run(resolve())
        env.start_monitor()

        # A store that is not Up (the pod kept away: no schedulable node), then a Raft-majority
        # guard when health checks are off.
        nodes = [f"kwok-node-{i}" for i in range(3)]
        cp.kubectl("cordon", *nodes)
        try:
            cp.kubectl("delete", "pod", "tikv-2", "-n", env.ns, "--grace-period=0", "--force", "--wait=false")
            pd = env.cluster.pd_url + "/pd/api/v1/store/3"
            import urllib.request

            wait_for(
                lambda: json.load(urllib.request.urlopen(pd))["store"]["state_name"] != "Up",
                20,
                "store 3 to leave Up",
            )
            env.drill("store-not-up", {})
            env.drill("majority", {"safety": {"requireHealthyCluster": False}})
            st = env.wait_phase("store-not-up", TERMINAL)
            assert st["reason"] == "StoreNotUp" and "store 3" in st["message"], st
            st = env.wait_phase("majority", TERMINAL)
            assert st["reason"] == "WouldLoseMajority" and "Raft majority" in st["message"], st
        finally:
            cp.kubectl("uncordon", *nodes)
        wait_for(lambda: env.ready_pods() == 3, 30, "tikv-2 back")
    assert history.replaced() == {"tikv-2": 1}, "only the test's own kill; no drill deleted anything"


def test_undetected_when_monitor_is_down(drill_env: DrillEnv) -> None:
    env = drill_env
    env.stop_monitor()
    env.drill("blind-spot", {"detection": {"timeoutSeconds": 4, "expectWithinSeconds": 2}})
    st = env.wait_phase("blind-spot", TERMINAL, timeout=60)
    assert (st["phase"], st["verdict"], st["reason"]) == ("Failed", "Undetected", "Undetected"), st
    assert "incident" not in st or st["incident"] is None
    detected = next(c for c in st["conditions"] if c["type"] == "Detected")
    assert detected["status"] == "False" and detected["reason"] == "DetectionTimeout"
    assert st["metrics"]["timeToRecoverSeconds"] > 0  # it still measured recovery


def test_delete_mid_drill_and_abort_restore(drill_env: DrillEnv) -> None:
    env = drill_env
    env.stop_monitor()  # keeps the drill in Detecting
    env.drill("to-delete", {"detection": {"timeoutSeconds": 600, "expectWithinSeconds": 30}})
    env.wait_phase("to-delete", {"Detecting"})
    env.kubectl("delete", "chaosdemo", "to-delete", "-n", env.ns, "--wait=true", "--timeout=60s")
    assert env.kubectl("get", "chaosdemo", "to-delete", "-n", env.ns, check=False).returncode != 0
    assert env.ready_pods() == 3, "the finalizer waited for the replacement to be Ready"

    env.drill("to-abort", {"detection": {"timeoutSeconds": 600, "expectWithinSeconds": 30}})
    env.wait_phase("to-abort", {"Detecting"})
    env.kubectl(
        "patch", "chaosdemo", "to-abort", "-n", env.ns, "--type=merge", "-p", '{"spec":{"abort":true}}'
    )
    st = env.wait_phase("to-abort", TERMINAL)
    assert (st["phase"], st["verdict"], st["reason"]) == ("Aborted", "Aborted", "Aborted"), st
    # Restored means what recovery means: the store re-registered (new start time) and Up.
    assert "store Up" in st["message"], st["message"]
    store = env.cluster.pd_store(st["victim"]["storeId"])
    assert store["store"]["start_timestamp"] >= int(parse_rfc3339(st["timeline"]["injectedAt"]))
    assert env.ready_pods() == 3
    finalizers = env.get("to-abort")["metadata"].get("finalizers", [])
    assert finalizers == ["chaos.operator.dev/restore"]  # kept until the object is deleted
    env.kubectl("delete", "chaosdemo", "to-abort", "-n", env.ns, "--wait=true", "--timeout=30s")


CRASH_POINTS = list(POINTS)  # every step boundary the controller marks


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_each_step_kills_one_pod_and_completes(drill_env: DrillEnv, point: str) -> None:
    """Three runs per crash point: SIGKILL there, restart, and the drill still kills exactly one
    pod and passes; no finalizer is left behind once the drill is deleted."""
    env = drill_env
    for run in range(3):
        env.wait_no_open_tickets()
        env.kill_controller()
        marker = env.workdir / f"crash-marker-{run}"
        crashing = env.start_controller(CHAOSDEMO_CRASH_AT=point, CHAOSDEMO_CRASH_MARKER=str(marker))
        name = f"crashy-{run}"
        with PodHistory(env.cluster) as history:
            env.drill(name, {})
            wait_for(
                lambda m=marker, c=crashing: m.exists() and not c.alive(),
                60,
                f"the controller to die at {point}",
            )
            assert crashing.popen is not None and crashing.popen.returncode == -9  # SIGKILL, not an exit
            env.start_controller()  # a fresh process, no crash
            st = env.wait_phase(name, TERMINAL, timeout=90)
            wait_for(lambda: env.ready_pods() == 3, 30, "all pods Ready")
        assert st["phase"] == "Completed" and st["verdict"] == "Pass", st
        assert history.replaced() == {st["victim"]["pod"]: 1}, f"crash at {point}, run {run}: {history.uids}"
        env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=true", "--timeout=30s")


def test_two_drills_on_one_target_never_overlap(drill_env: DrillEnv) -> None:
    env = drill_env
    with PodHistory(env.cluster) as history:
        env.drill("first", {})
        env.drill("second", {})
        a = env.wait_phase("first", TERMINAL, timeout=120)
        b = env.wait_phase("second", TERMINAL, timeout=120)
    assert {a["verdict"], b["verdict"]} == {"Pass"}, (a, b)
    windows = sorted(
        (parse_rfc3339(s["timeline"]["injectedAt"]), parse_rfc3339(s["timeline"]["completedAt"]))
        for s in (a, b)
    )
    assert windows[0][1] <= windows[1][0], f"drills overlapped: {windows}"
    assert sum(history.replaced().values()) == 2
    waited = a if a["timeline"]["injectedAt"] > b["timeline"]["injectedAt"] else b
    assert waited["timeline"].get("queuedAt"), "the later drill waited for the target lock"
    # Its next run starts clean: nothing of the queueing leaks into it (once the cluster has
    # settled; a run right behind an incident rightly queues again).
    env.wait_no_open_tickets()
    name = "first" if waited is a else "second"
    env.kubectl(
        "patch", "chaosdemo", name, "-n", env.ns, "--type=merge", "-p", '{"spec":{"safety":{"dryRun":true}}}'
    )
    wait_for(
        lambda: env.status(name).get("observedGeneration") == 2 and env.status(name).get("phase") in TERMINAL,
        30,
        "rerun",
    )
    rerun = env.status(name)
    assert "queuedAt" not in rerun["timeline"] and rerun["history"][0]["verdict"] == "Pass", rerun


def test_new_generation_reruns_and_keeps_history(drill_env: DrillEnv) -> None:
    env = drill_env
    env.drill("again", {"safety": {"dryRun": True}})
    first = env.wait_phase("again", TERMINAL)
    time.sleep(0.5)
    env.kubectl(
        "patch",
        "chaosdemo",
        "again",
        "-n",
        env.ns,
        "--type=merge",
        "-p",
        '{"spec":{"detection":{"timeoutSeconds":99}}}',
    )
    wait_for(
        lambda: (
            env.status("again").get("observedGeneration") == 2
            and env.status("again").get("phase") in TERMINAL
        ),
        30,
        "the second run",
    )
    st = env.status("again")
    assert st["history"][0]["generation"] == 1 and st["history"][0]["reason"] == first["reason"]
