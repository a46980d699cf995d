"""network-partition end to end: the controller cuts a TiKV pod off from PD and its peers with a
NetworkPolicy (the emulator honours it as an enforcing CNI would), the monitor and PD notice, the
blind diagnosis says network_partition, the policy goes after durationSeconds and the store is
Up again without having restarted; aborted or deleted mid-partition, no policy remains."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.timefmt import parse_rfc3339
from tests.support.drills import DrillEnv, PodHistory, started_drill_env, wait_for, wait_stores_aged

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}


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
        with PodHistory(cluster) as pods:
            env.drill("partition", _partition("tikv-1", 20))
            env.wait_phase("partition", {"Detecting", "Diagnosing", "Recovering"}, timeout=60)
            policies_during = _policies(env)
            wait_for(
                lambda: _pd(env, f"/pd/api/v1/store/{victim_id}")["store"]["state_name"] == "Disconnected",
                30,
                "PD to lose tikv-1's heartbeats",
            )
            reports_during = _unreachable_reports(survivor_status, victim_id)
            st = env.wait_phase("partition", TERMINAL, timeout=150)
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

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    policy = st["victim"]["partitionPolicy"]
    assert policies_during == [policy] and policies_after == [], (policies_during, policies_after)
    assert pods.replaced() == {}, "nothing was killed"
    # Its process ran on: Up again with the same start time.
    assert store_after["store"]["state_name"] == "Up" and store_after["status"]["start_ts"] == started
    assert reports_during > reports_before, "the survivors counted unreachable messages to it"
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    assert t["restoredAt"] - t["injectedAt"] >= 20.0, st["timeline"]
    assert t["restoredAt"] <= t["storeUpAt"] <= t["recoveredAt"], st["timeline"]
    detected = next(s for s in st["detection"]["sources"] if s["type"] == "tickets")
    assert detected["state"] == "Detected" and 0 < detected["ttdSeconds"] < 20, detected
    diagnosis = st["diagnosis"]
    assert diagnosis["blind"] is True and diagnosis["rootCauseCategory"] == "network_partition", diagnosis
    assert diagnosis["matchesInjectedFault"] is True, diagnosis

    assert len(cut_while_running) == 1 and after_deletion == [], (cut_while_running, after_deletion)
    assert (aborted["phase"], aborted["reason"]) == ("Aborted", "Aborted"), aborted
    assert after_abort == [] and "restoredAt" in aborted["timeline"], aborted["timeline"]
