"""Reliability and security under faults: the monitor killed mid-incident, dependencies failing
during a drill, bad input against the real API server and controller, and a canary API key that
must appear nowhere."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.drills import DrillEnv, PodHistory, claude_drill_env, started_drill_env, wait_for
from tests.support.messages_api import MessagesAPIServer

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}


def refused_elsewhere(env: DrillEnv, name: str) -> None:
    """A second ChaosDemo, on a namespace that is not opted in: proof the controller still serves."""
    env.drill(name, {"target": {"namespace": "default"}})
    st_ = env.wait_phase(name, TERMINAL, timeout=30)
    assert st_["reason"] == "NamespaceNotOptedIn"


def test_monitor_sigkilled_mid_incident_loses_and_duplicates_nothing(drill_env: DrillEnv) -> None:
    env = drill_env
    for run in range(3):
        env.wait_no_open_tickets()
        pod = f"tikv-{run}"
        env.kubectl("delete", "pod", pod, "-n", env.ns, "--grace-period=0", "--force", "--wait=false")
        wait_for(lambda: env.open_tickets() >= 1, 15, "the monitor's ticket")
        assert env.monitor is not None
        env.monitor.kill(signal.SIGKILL)  # mid-incident, ticket open
        env.monitor.popen.wait(5)  # type: ignore[union-attr]
        time.sleep(0.5)
        env.start_monitor()
        env.wait_no_open_tickets(40)
    rows = (
        sqlite3.connect(env.db_path)
        .execute("SELECT subject, COUNT(*) FROM tickets GROUP BY subject")
        .fetchall()
    )
    assert sorted(rows) == [("store/1", 1), ("store/2", 1), ("store/3", 1)], rows


def test_dependency_faults_during_drills(drill_env: DrillEnv) -> None:
    env = drill_env
    cp = env.cluster.control_plane

    # PD goes away right after the kill and comes back: detection (probes, Prometheus) still
    # works; recovery waits for PD to confirm the store.
    env.drill("pd-flap", {})
    env.wait_phase("pd-flap", {"Detecting", "Diagnosing", "Recovering"})
    env.cluster.admin("/emulator/pd", {"serving": False})
    refused_elsewhere(env, "other-1")
    time.sleep(2)
    env.cluster.admin("/emulator/pd", {"serving": True})
    st_ = env.wait_phase("pd-flap", TERMINAL, timeout=90)
    assert st_["verdict"] == "Pass", st_
    env.wait_no_open_tickets(60)

    # PD down for good during recovery: a clear verdict, not a hang.
    env.drill("pd-gone", {"recovery": {"timeoutSeconds": 8}})
    env.wait_phase("pd-gone", {"Diagnosing", "Recovering"})
    env.cluster.admin("/emulator/pd", {"serving": False})
    st_ = env.wait_phase("pd-gone", TERMINAL, timeout=60)
    assert (st_["verdict"], st_["reason"]) == ("Fail", "RecoveryTimeout") and "PD unavailable" in st_[
        "message"
    ]
    env.cluster.admin("/emulator/pd", {"serving": True})
    env.wait_no_open_tickets(60)

    # Prometheus down: the monitor detects by probes; the diagnosis goes without metrics.
    assert env.cluster.prometheus is not None
    env.cluster.prometheus.stop()
    env.drill("no-prom", {})
    st_ = env.wait_phase("no-prom", TERMINAL, timeout=90)
    assert st_["verdict"] == "Pass" and st_["diagnosis"]["rootCauseCategory"] == "tikv_pod_failure", st_
    env.wait_no_open_tickets(60)

    # The API server restarts mid-drill (4 s down): kopf and the emulator reconnect.
    env.drill("apiserver-restart", {})
    env.wait_phase("apiserver-restart", {"Detecting", "Diagnosing", "Recovering"})
    cp.restart_apiserver(down_seconds=4)
    st_ = env.wait_phase("apiserver-restart", TERMINAL, timeout=120)
    assert st_["verdict"] == "Pass", st_
    refused_elsewhere(env, "other-2")
    env.wait_no_open_tickets(60)

    # The SQLite file locked by another writer for longer than the busy timeout (10 s).
    # Taken before the drill starts, so the monitor cannot write the kill's ticket (its writes
    # time out and it retries) and the diagnosis waits: detection is late, nothing is lost.
    holder = sqlite3.connect(env.db_path, timeout=1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        env.drill("db-locked", {"detection": {"timeoutSeconds": 60, "expectWithinSeconds": 30}})
        env.wait_phase("db-locked", {"Detecting"})
        refused_elsewhere(env, "other-3")
        time.sleep(12)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    st_ = env.wait_phase("db-locked", TERMINAL, timeout=90)
    assert st_["phase"] in TERMINAL and st_["verdict"] in ("Pass", "Fail"), st_
    assert st_["reason"] in ("Passed", "DetectionSLOMissed"), st_
    assert st_["metrics"]["timeToDetectSeconds"] >= 8, "the ticket could only be written after the lock"
    assert env.controller is not None and env.controller.alive()
    assert env.monitor is not None and env.monitor.alive()


@pytest.mark.parametrize("mode", ["overloaded", "server_error", "timeout"])
def test_messages_api_faults_fall_back(tikv_cluster_factory, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]

    api = MessagesAPIServer(mode=mode, delay_s=10).start()
    env = claude_drill_env(
        tikv_cluster_factory(),
        tmp_path / "drill",
        api.url,
        CHAOSDEMO_CLAUDE_TIMEOUT="2",
        CHAOSDEMO_CLAUDE_MAX_RETRIES="1",
    )
    try:
        env.drill("claude-down", {"diagnosis": {"provider": "claude"}})
        st_ = env.wait_phase("claude-down", TERMINAL, timeout=120)
    finally:
        env.stop()
        api.stop()
    assert st_["verdict"] == "Pass", st_
    expected = {"overloaded": "api_error_529", "server_error": "api_error_500", "timeout": "timeout"}[mode]
    assert st_["diagnosis"]["diagnoser"] == "offline-rules" and st_["diagnosis"]["fallbackReason"] == expected
    assert len(api.requests) == 2  # one retry, as configured


SPEC_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)
SPECS = st.fixed_dictionaries(
    {},
    optional={
        "target": st.fixed_dictionaries(
            {},
            optional={
                "namespace": st.one_of(
                    st.sampled_from(["", "default", "kube-system", "nope", "UPPER", "a" * 70]), SPEC_VALUES
                ),
                "selector": st.one_of(
                    st.just({"matchLabels": {}}),
                    st.just({"matchLabels": {"app": "nothing"}}),
                    st.just({"matchExpressions": [{"key": "x", "operator": "Bogus"}]}),
                    # Edge cases the API server would refuse only when used, or that match too much.
                    st.just({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}),
                    st.just({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}),
                    st.just({"matchLabels": {"app.kubernetes.io/component": "has space"}}),
                    st.just({"matchLabels": {"-bad-key": "tikv"}}),
                    st.just({"matchLabels": {"app.kubernetes.io/component": "x" * 64}}),
                    st.just(
                        {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["pd"]}
                            ]
                        }
                    ),
                    st.just(
                        {
                            "matchExpressions": [
                                {"key": "app.kubernetes.io/component", "operator": "DoesNotExist"}
                            ]
                        }
                    ),
                    SPEC_VALUES,
                ),
                "pdAddress": st.one_of(
                    st.sampled_from(
                        [
                            "pd:2379",
                            "ftp://pd:2379",
                            "http://user:pw@pd:2379",
                            "http://",
                            "",
                        ]
                    ),
                    SPEC_VALUES,
                ),
                "pod": st.one_of(st.sampled_from(["tikv-9", "pd-0", "../etc"]), SPEC_VALUES),
            },
        ),
        "fault": st.fixed_dictionaries(
            {},
            optional={
                "action": st.one_of(st.sampled_from(["pod-kill", "node-kill", ""]), SPEC_VALUES),
                "gracePeriodSeconds": st.one_of(st.integers(-5, 400), SPEC_VALUES),
            },
        ),
        "detection": st.fixed_dictionaries(
            {},
            optional={
                "timeoutSeconds": st.one_of(st.integers(-5, 5000), SPEC_VALUES),
                "expectWithinSeconds": st.one_of(st.integers(-5, 5000), SPEC_VALUES),
            },
        ),
        "diagnosis": st.fixed_dictionaries(
            {}, optional={"provider": st.one_of(st.sampled_from(["auto", "gpt"]), SPEC_VALUES)}
        ),
        "unknownField": SPEC_VALUES,
        "abort": SPEC_VALUES,
    },
)


def test_property_based_specs_are_rejected_or_handled(drill_env: DrillEnv) -> None:
    """Random specs against the real API server and controller. Every one is either rejected by
    the schema, or reaches a terminal phase with a reason; none kills a pod unless it is a valid
    drill on the opted-in cluster (at most one each); the controller never crashes."""
    env = drill_env
    outcomes: dict[str, int] = {"rejected": 0, "accepted": 0}
    counter = iter(range(10_000))
    with PodHistory(env.cluster) as history:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        @given(SPECS)
        def check(spec: dict) -> None:
            name = f"prop-{next(counter)}"
            body = {
                "apiVersion": "chaos.operator.dev/v1alpha1",
                "kind": "ChaosDemo",
                "metadata": {"name": name},
                "spec": {**spec, "safety": {"requireHealthyCluster": True}},
            }
            result = env.kubectl("apply", "-n", env.ns, "-f", "-", input=json.dumps(body), check=False)
            if result.returncode != 0:
                outcomes["rejected"] += 1
                assert (
                    "Invalid" in result.stderr
                    or "invalid" in result.stderr
                    or "error" in result.stderr.lower()
                )
                return
            outcomes["accepted"] += 1
            st_ = env.wait_phase(name, TERMINAL, timeout=120)
            assert st_.get("reason") and st_.get("message")
            if st_["verdict"] == "Error":
                assert "victim" not in st_ or st_["victim"] is None or st_["reason"] == "DryRun"
            env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=true", "--timeout=60s")
            env.wait_no_open_tickets(60)

        check()
    assert outcomes["rejected"] > 0 and outcomes["accepted"] > 0, outcomes
    kills = sum(history.replaced().values())
    assert kills <= outcomes["accepted"]
    assert env.controller is not None and env.controller.alive()
    assert "Traceback" not in env.controller.log_path.read_text(errors="replace")


CANARY = "sk-ant-api03-CANARY-5e1f0c2d9b8a7f6e5d4c3b2a"
# Other credential shapes an SRE's cluster carries, each planted in an Event about the victim.
OTHER_CANARIES = {
    "url password": ("dial https://ops:CanaryUrlPw77@pd.tikv:2379 failed", "CanaryUrlPw77"),
    "bearer": ("Authorization: Bearer CanaryBearerTok3n0123456789", "CanaryBearerTok3n0123456789"),
    "basic": ("Authorization: Basic Q2FuYXJ5QmFzaWM6cHc=", "Q2FuYXJ5QmFzaWM6cHc="),
    "pem": ("-----BEGIN PRIVATE KEY-----\nCanaryPemBody42\n-----END PRIVATE KEY-----", "CanaryPemBody42"),
    "aws": ("AWS key AKIACANARY0123456789 in env", "AKIACANARY0123456789"),
    "json": ('{\\"password\\":\\"CanaryJsonPw99\\"}', "CanaryJsonPw99"),
}


def test_canary_key_appears_nowhere(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = MessagesAPIServer(mode="good").start()
    cluster = tikv_cluster_factory()
    cp = cluster.control_plane
    # Planted where a careless pipeline would pick it up: on the TiKV pods and in an Event.
    cp.kubectl(
        "annotate",
        "pods",
        "-n",
        cluster.namespace,
        "-l",
        "app.kubernetes.io/component=tikv",
        f"vendor.example/api-key={CANARY}",
    )
    messages = [f"config dump: ANTHROPIC_API_KEY={CANARY}", *(m for m, _ in OTHER_CANARIES.values())]
    for n, message in enumerate(messages):
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"planted-{n}"},
            "involvedObject": {"kind": "Pod", "name": "tikv-0", "namespace": cluster.namespace},
            "reason": "Planted",
            "type": "Warning",
            "message": message,
        }
        cp.kubectl("create", "-n", cluster.namespace, "-f", "-", input=json.dumps(event))
    env = started_drill_env(cluster, tmp_path / "drill", ANTHROPIC_API_KEY=CANARY, ANTHROPIC_BASE_URL=api.url)
    try:
        env.drill("canary", {"diagnosis": {"provider": "claude"}, "target": {"pod": "tikv-0"}})
        st_ = env.wait_phase("canary", TERMINAL, timeout=120)
    finally:
        env.stop()
        api.stop()
    assert st_["verdict"] == "Pass" and st_["diagnosis"]["diagnoser"] == "claude", st_
    assert api.requests, "the diagnosis went through the Messages API"
    places = {
        "status": json.dumps(env.get("canary")),
        "events": cp.kubectl(
            "get",
            "events",
            "-n",
            cluster.namespace,
            "--field-selector",
            "involvedObject.kind=ChaosDemo",
            "-o",
            "json",
        ).stdout,
        "controller log": env.workdir.joinpath("controller.log").read_text(errors="replace"),
        "monitor log": env.workdir.joinpath("monitor.log").read_text(errors="replace"),
        "prompts": "".join(r["raw"] for r in api.requests),
    }
    for path in env.workdir.glob("tickets.db*"):
        places[path.name] = path.read_bytes().decode("latin-1")
    assert (
        "Planted" in places["prompts"]
        or "config dump" in places["prompts"]
        or "[REDACTED]" in places["prompts"]
    )
    leaks = [where for where, text in places.items() if CANARY in text]
    assert not leaks, f"the canary key leaked into: {leaks}"
    for form, (_, secret) in OTHER_CANARIES.items():
        leaked = [where for where, text in places.items() if secret in text]
        assert not leaked, f"the {form} canary leaked into: {leaked}"
