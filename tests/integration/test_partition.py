"""network-partition end to end: the controller cuts a TiKV pod off from PD and its peers with a
NetworkPolicy (the emulator honours it as an enforcing CNI would), the monitor and PD notice, the
blind diagnosis says network_partition, the policy goes after durationSeconds and the store is
Up again without having restarted; aborted or deleted mid-partition, no policy remains."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.operator.crashpoints import PARTITION_POINTS
from controller.sandbox.binaries import binary
from controller.timefmt import parse_rfc3339
from controller.ui import html_report, report
from tests.support.drills import DrillEnv, PodHistory, started_drill_env, wait_for, wait_stores_aged
from tests.support.prometheus_truth import (
    EVALUATION,
    FOR_SECONDS,
    SCRAPE,
    TIME_SCALE,
    assert_timed_as_prometheus,
)

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
RESTART = "TiKV_node_restart"
DISCONNECT = "PD_cluster_lost_connect_store_nums"
UNREACHABLE = "TiKV_server_report_failure_msg_total"


def _pd(env: DrillEnv, path: str) -> Any:
    with urllib.request.urlopen(f"{env.cluster.pd_url}{path}", timeout=5) as r:
        return json.load(r)


def _policies(env: DrillEnv) -> list[str]:
    out = env.kubectl("get", "networkpolicies", "-n", env.ns, "-o", "json").stdout
    return [p["metadata"]["name"] for p in json.loads(out)["items"]]


def _unreachable_reports(status_address: str, about_store: int) -> float:
    with urllib.request.urlopen(f"http://{status_address}/metrics", timeout=5) as r:
        text = r.read().decode()
    prefix = f'tikv_server_report_failure_msg_total{{store_id="{about_store}",type="unreachable"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def _partition(pod: str, seconds: int) -> dict[str, Any]:
    return {
        "target": {"pod": pod},
        "fault": {"action": "network-partition", "durationSeconds": seconds},
        "detection": {"sources": [{"type": "tickets"}]},
        "diagnosis": {"provider": "offline"},
        "recovery": {"waitForLeadersSeconds": 0},
    }


def test_network_partition_end_to_end(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory()
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        stores = {s["store"]["address"].split(".")[0]: s for s in _pd(env, "/pd/api/v1/stores")["stores"]}
        victim_id = stores["tikv-1"]["store"]["id"]
        survivor_status = stores["tikv-0"]["store"]["status_address"]
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        started = _pd(env, f"/pd/api/v1/store/{victim_id}")["status"]["start_ts"]
        reports_before = _unreachable_reports(survivor_status, victim_id)
        # Two of three stores cut off at once would cost every region its majority: refused, as
        # for pod-kill.
        two = _partition("tikv-1", 30)
        two["target"] = {}
        two["fault"]["count"] = 2
        env.drill("two", two)
        refused = env.wait_phase("two", TERMINAL, timeout=60)
        with PodHistory(cluster) as pods:
            env.drill(
                "partition",
                {
                    **_partition("tikv-1", 30),
                    "impact": {"probe": {"enabled": True, "requestsPerSecond": 40, "deadlineSeconds": 1.0}},
                },
            )
            env.wait_phase("partition", {"Detecting", "Diagnosing", "Recovering"}, timeout=60)
            policies_during = _policies(env)
            wait_for(
                lambda: _pd(env, f"/pd/api/v1/store/{victim_id}")["store"]["state_name"] == "Disconnected",
                30,
                "PD to lose tikv-1's heartbeats",
            )
            reports_during = _unreachable_reports(survivor_status, victim_id)
            st = env.wait_phase("partition", TERMINAL, timeout=150)
        drill_obj = env.get("partition")
        store_after = _pd(env, f"/pd/api/v1/store/{victim_id}")
        policies_after = _policies(env)
        env.wait_no_open_tickets(60)

        # Deleted mid-partition: the finalizer deletes the policy before the object goes.
        env.drill("deleted", _partition("tikv-2", 600))
        env.wait_phase("deleted", {"Detecting", "Diagnosing", "Recovering"}, timeout=60)
        cut_while_running = _policies(env)
        env.kubectl("delete", "chaosdemo", "deleted", "-n", env.ns, "--wait=true", "--timeout=90s")
        after_deletion = _policies(env)
        env.wait_no_open_tickets(60)

        # Aborted mid-partition: healed, and the verdict says so.
        env.drill("aborted", _partition("tikv-0", 600))
        env.wait_phase("aborted", {"Detecting", "Diagnosing", "Recovering"}, timeout=60)
        env.kubectl(
            "patch", "chaosdemo", "aborted", "-n", env.ns, "--type=merge", "-p", '{"spec":{"abort":true}}'
        )
        aborted = env.wait_phase("aborted", TERMINAL, timeout=90)
        after_abort = _policies(env)
    finally:
        env.stop()

    assert (refused["phase"], refused["reason"]) == ("Failed", "WouldLoseMajority"), refused
    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    # What TiKV's client felt: reads of the cut-off leader's regions stalled until the election.
    client = st["impact"]["client"]
    assert client["before"]["failed"] == 0 and client["during"]["failed"] + client["during"]["stalled"] > 0, (
        client
    )
    policy = st["victim"]["partitionPolicy"]
    assert policies_during == [policy] and policies_after == [], (policies_during, policies_after)
    assert pods.replaced() == {}, "nothing was killed"
    # Its process ran on: Up again with the same start time.
    assert store_after["store"]["state_name"] == "Up" and store_after["status"]["start_ts"] == started
    assert reports_during > reports_before, "the survivors counted unreachable messages to it"
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    assert t["restoredAt"] - t["injectedAt"] >= 30.0, st["timeline"]
    assert t["restoredAt"] <= t["storeUpAt"] <= t["recoveredAt"], st["timeline"]
    detected = next(s for s in st["detection"]["sources"] if s["type"] == "tickets")
    assert detected["state"] == "Detected" and 0 < detected["ttdSeconds"] < 20, detected
    diagnosis = st["diagnosis"]
    assert diagnosis["blind"] is True and diagnosis["rootCauseCategory"] == "network_partition", diagnosis
    assert diagnosis["matchesInjectedFault"] is True, diagnosis

    # The report, as for any fault: its timeline from the cut to the store back, the diagnosis,
    # what clients felt.
    drilled = report.build(drill_obj, None)
    markdown, page = report.to_markdown(drilled), html_report.to_html(drilled)
    assert "tikv-1" in markdown and "store Up" in markdown and "network_partition" in markdown, markdown
    assert page.startswith("<!doctype html>") and '<svg id="timeline"' in page and 'id="impact"' in page

    assert len(cut_while_running) == 1 and after_deletion == [], (cut_while_running, after_deletion)
    assert (aborted["phase"], aborted["reason"]) == ("Aborted", "Aborted"), aborted
    assert after_abort == [] and "restoredAt" in aborted["timeline"], aborted["timeline"]


class PolicyEvents:
    """Every NetworkPolicy event in the namespace, as the API server delivered it (a watch)."""

    def __init__(self, env: DrillEnv) -> None:
        self.env = env
        self.events: list[tuple[str, str]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> PolicyEvents:
        cp = self.env.cluster.control_plane
        self._proc = subprocess.Popen(
            [
                *(str(binary("kubectl")), "--kubeconfig", str(cp.kubeconfig)),
                *("get", "networkpolicies", "-n", self.env.ns, "--watch", "--output-watch-events"),
                *("-o", 'jsonpath={.type} {.object.metadata.name}{"\\n"}'),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread.start()
        time.sleep(1.0)  # the watch established before anything it should see
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            kind, _, name = line.strip().partition(" ")
            if name:
                self.events.append((kind, name))

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
        self._thread.join(5)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def test_a_partition_survives_a_controller_crash_at_each_step(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL at each of the drill's step boundaries, then a fresh controller finishes it: each
    time one policy is made and deleted, exactly once, and the drill passes."""
    cluster = tikv_cluster_factory()
    env = started_drill_env(cluster, tmp_path / "drill")
    outcomes: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
    try:
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        for point in PARTITION_POINTS:
            env.kill_controller()
            marker = env.workdir / f"partition-crash-{point}"
            crashing = env.start_controller(CHAOSDEMO_CRASH_AT=point, CHAOSDEMO_CRASH_MARKER=str(marker))
            with PolicyEvents(env) as events:
                env.drill(point, _partition("tikv-1", 5))
                wait_for(
                    lambda m=marker, c=crashing: m.exists() and not c.alive(),  # type: ignore[misc]
                    90,
                    f"the controller to die at {point}",
                )
                env.start_controller()
                st = env.wait_phase(point, TERMINAL, timeout=120)
            outcomes[point] = (st, events.kinds(), _policies(env))
            env.kubectl("delete", "chaosdemo", point, "-n", env.ns, "--wait=true", "--timeout=30s")
            env.wait_no_open_tickets(60)
    finally:
        env.stop()
    for point, (st, kinds, left) in outcomes.items():
        assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), (point, st)
        assert kinds == ["ADDED", "DELETED"] and left == [], (point, kinds, left)


def test_a_partition_stopped_around_the_claim(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Deleted or aborted while held before the claim (nothing is ever cut off) and after it
    (the cut is made and undone before the drill ends or goes)."""
    holds = tmp_path / "hold"
    cluster = tikv_cluster_factory()
    env = started_drill_env(cluster, tmp_path / "drill", CHAOSDEMO_HOLD_CONTROL=str(holds))
    held = Path(f"{holds}.held")
    seen: dict[str, list[str]] = {}
    try:
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        for point in ("before-Injecting", "claim-read", "claim-written", "before-Detecting"):
            for how in ("delete", "abort"):
                name = f"cut-{how}-{point.lower()}"
                held.unlink(missing_ok=True)
                holds.write_text(point)
                with PolicyEvents(env) as events:
                    env.drill(name, _partition("tikv-1", 600))
                    wait_for(held.exists, 90, f"{name} to be held at {point}")
                    if how == "delete":
                        env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=false")
                    else:
                        env.kubectl(
                            "patch",
                            "chaosdemo",
                            name,
                            "-n",
                            env.ns,
                            "--type=merge",
                            "-p",
                            '{"spec":{"abort":true}}',
                        )
                    holds.unlink()
                    if how == "abort":
                        env.wait_phase(name, TERMINAL, timeout=120)
                    env.kubectl(
                        "delete",
                        "chaosdemo",
                        name,
                        "-n",
                        env.ns,
                        "--ignore-not-found",
                        "--wait=true",
                        "--timeout=120s",
                    )
                seen[name] = events.kinds()
                assert _policies(env) == [], (name, events.events)
                env.wait_no_open_tickets(90)
    finally:
        holds.unlink(missing_ok=True)
        env.stop()
    for name, kinds in seen.items():
        before_claim = "before-injecting" in name or "claim-read" in name
        assert kinds == ([] if before_claim else ["ADDED", "DELETED"]), (name, kinds)


def test_a_partition_timed_per_source_against_the_standard_rules(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A 30 s partition from PD and peers at the alerting tests' time scale: the monitor's
    ticket, PD's disconnect rule (its `for:` scaled to 12 s) fires and is timed as Prometheus
    records it, the restart rule is missed (nothing restarted), and so is the unreachable-reports
    rule (its 10-minute rate stays far below 10 a second in 30 s), each saying why."""
    cluster = tikv_cluster_factory(
        time_scale=TIME_SCALE, with_alerting=True, scrape_interval=SCRAPE, evaluation_interval=EVALUATION
    )
    env = started_drill_env(cluster, tmp_path / "drill", **cluster.alerting_env())
    prom = cluster.prometheus
    assert prom is not None
    sources = [
        {"type": "tickets"},
        {"type": "prometheus", "name": "disconnect-rule", "alertnames": [DISCONNECT]},
        {"type": "prometheus", "name": "restart-rule", "alertnames": [RESTART], "required": False},
        {"type": "prometheus", "name": "unreachable-rule", "alertnames": [UNREACHABLE], "required": False},
    ]
    try:
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        env.drill(
            "partition",
            {
                **_partition("tikv-1", 30),
                "detection": {"timeoutSeconds": 60, "expectWithinSeconds": 60, "sources": sources},
            },
        )
        st = env.wait_phase("partition", TERMINAL, timeout=180)
        events = env.kubectl("get", "events", "-n", env.ns, "-o", "json").stdout
    finally:
        env.stop()

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    kill = parse_rfc3339(st["timeline"]["injectedAt"])
    by_name = {s["name"]: s for s in st["detection"]["sources"]}
    disconnect = by_name["disconnect-rule"]
    assert disconnect["state"] == "Detected", disconnect
    # A cluster-level rule (no instance label): matched to the drilled cluster.
    assert_timed_as_prometheus(prom.url, disconnect, None, kill)
    assert disconnect["ttdSeconds"] > FOR_SECONDS, disconnect
    assert (
        by_name["tickets"]["state"] == "Detected"
        and by_name["tickets"]["ttdSeconds"] < disconnect["ttdSeconds"]
    )
    for missed in ("restart-rule", "unreachable-rule"):
        assert by_name[missed]["state"] == "Missed" and by_name[missed]["why"], by_name[missed]
    # No CNI in the sandbox: the drill went on, warning that enforcement is not confirmed.
    warned = [e for e in json.loads(events)["items"] if e["reason"] == "NetworkPolicyEnforcementUnknown"]
    assert warned and warned[0]["type"] == "Warning", [e["reason"] for e in json.loads(events)["items"]]


def test_cut_off_from_pd_alone_raft_and_leaders_are_untouched(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """partition.from: [pd]: PD loses the store while Raft goes on, so its leaders stay, and the
    drill waits for leaders as usual and passes with them never having moved."""
    cluster = tikv_cluster_factory()
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        leaders = {r["id"]: r["leader"]["store_id"] for r in _pd(env, "/pd/api/v1/regions")["regions"]}
        # Longer than the diagnosis waits for a second signal (15 s): it judges the cut, not the healing.
        spec = _partition("tikv-1", 25)
        spec["fault"]["partition"] = {"from": ["pd"]}
        spec["recovery"] = {"waitForLeadersSeconds": 30}
        env.drill("pd-only", spec)
        st = env.wait_phase("pd-only", TERMINAL, timeout=120)
        leaders_after = {r["id"]: r["leader"]["store_id"] for r in _pd(env, "/pd/api/v1/regions")["regions"]}
    finally:
        env.stop()
    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    assert leaders_after == leaders, "no election: Raft never lost the store"
    t = st["timeline"]
    assert "leadersBalancedAt" in t and t["leadersElectedAt"] == t["injectedAt"], t
    assert st["diagnosis"]["rootCauseCategory"] == "network_partition", json.dumps(st["diagnosis"], indent=1)
