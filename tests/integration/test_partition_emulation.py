"""A NetworkPolicy in the loop: the emulator honours the policies the API server holds, as an
enforcing CNI would, and the real TiKV client and PD's API show what a partition does. A policy
that isolates tikv-1 (no ingress, no egress): PD stops hearing its heartbeats (Disconnected
after 20 s, scaled), the survivors count unreachable messages to it, its regions elect new
leaders after an election timeout, requests to it go unanswered (a dropped packet, not a
refusal), and once the policy is deleted it is Up again without having restarted."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.client_probe.model import Outcome
from controller.operator.partition import partition_policy
from controller.sandbox.tikv import TikvCluster
from tests.support.drills import wait_for
from tests.support.rust_client import Prober

pytestmark = pytest.mark.integration
AFTER_ELECTION_SLACK = 0.5


def _pd(cluster: TikvCluster, path: str) -> Any:
    with urllib.request.urlopen(f"{cluster.pd_url}{path}", timeout=10) as r:
        return json.loads(r.read())


def _isolation(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "isolate-tikv-1", "namespace": namespace},
            "spec": {
                "podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "tikv-1"}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }
    )


def _unreachable_reports(status_address: str, about_store: int) -> float:
    with urllib.request.urlopen(f"http://{status_address}/metrics", timeout=5) as r:
        text = r.read().decode()
    prefix = f'tikv_server_report_failure_msg_total{{store_id="{about_store}",type="unreachable"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def _answers(status_address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{status_address}/status", timeout=1):
            return True
    except (urllib.error.URLError, TimeoutError):
        return False


def test_a_network_policy_cuts_a_store_off_and_its_deletion_heals_it(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(with_prometheus=False, time_scale=0.3)
    regions = _pd(cluster, "/pd/api/v1/regions")["regions"]
    leaders_before = {r["id"]: r["leader"]["store_id"] for r in regions}
    stores = {s["store"]["address"].split(".")[0]: s for s in _pd(cluster, "/pd/api/v1/stores")["stores"]}
    victim, survivor = stores["tikv-1"], stores["tikv-0"]
    victim_id = victim["store"]["id"]
    probe = Prober(cluster, tmp_path / "probe.jsonl")
    records = probe.records

    def state(store_id: int) -> dict[str, Any]:
        return dict(_pd(cluster, f"/pd/api/v1/store/{store_id}"))

    try:
        wait_for(
            lambda: {r.region_id for r in records() if r.outcome == Outcome.OK} == set(leaders_before),
            30,
            "every region to answer the client",
        )
        reports_before = _unreachable_reports(survivor["store"]["status_address"], victim_id)
        cut_at = time.time()
        cluster.control_plane.kubectl("apply", "-f", "-", input=_isolation(cluster.namespace))
        election = wait_for(
            lambda: next((e for e in cluster.admin_state()["elections"] if e["pod"] == "tikv-1"), None),
            30,
            "the majority to elect new leaders for tikv-1's regions",
        )
        wait_for(lambda: state(victim_id)["store"]["state_name"] == "Disconnected", 30, "PD to lose tikv-1")
        cut_state = state(victim_id)
        victim_answers = _answers(victim["store"]["status_address"])
        reports_during = _unreachable_reports(survivor["store"]["status_address"], victim_id)
        wait_for(
            lambda: all(
                sum(1 for r in records() if r.region_id == region and r.started > election["elected_at"]) >= 2
                for region in leaders_before
            ),
            30,
            "every region read again after the election",
        )
        healed_at = time.time()
        cluster.control_plane.kubectl("delete", "networkpolicy", "isolate-tikv-1", "-n", cluster.namespace)
        wait_for(lambda: state(victim_id)["store"]["state_name"] == "Up", 30, "tikv-1 Up again")
        healed_state = state(victim_id)
        answers_again = _answers(victim["store"]["status_address"])
    finally:
        seen = probe.stop()

    # Its process ran on throughout: the same start time before, during and after.
    started = victim["status"]["start_ts"]
    assert cut_state["status"]["start_ts"] == started == healed_state["status"]["start_ts"]
    assert not victim_answers and answers_again, "its status port: dropped while cut, answering after"
    assert reports_during > reports_before, "the survivors count unreachable messages to it"
    # Its regions, and only they, moved their leaders, after an election timeout from the cut.
    victim_regions = set(election["regions"])
    assert victim_regions == {r for r, store in leaders_before.items() if store == victim_id}
    assert cut_at - 0.01 <= election["died_at"] < election["elected_at"] < healed_at
    for record in seen:
        if record.region_id not in victim_regions or record.ended < election["died_at"]:
            assert record.outcome == Outcome.OK, ("a region not cut off failed", record)
        elif record.started > election["elected_at"] + AFTER_ELECTION_SLACK:
            assert record.outcome == Outcome.OK, ("still failing after the election", record, election)
    during = [
        r
        for r in seen
        if r.region_id in victim_regions
        and election["died_at"] + 0.1 <= r.started < election["elected_at"] - 0.5
    ]
    # Dropped, not refused: the client waits out its deadline.
    assert during and all(r.outcome != Outcome.OK for r in during), [
        (r.region_id, r.outcome, round(r.started - election["died_at"], 2)) for r in during
    ]


def test_cut_off_from_pd_alone_the_store_serves_on_while_pd_loses_it(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """network-partition's own policy (``partition_policy``, accepted by the real API server)
    cutting tikv-1 off from PD only: PD marks it Disconnected, yet Raft and clients are
    untouched: its leaders stay, every read answers, no peer reports it unreachable."""
    cluster = tikv_cluster_factory(with_prometheus=False, time_scale=0.3)
    stores = {s["store"]["address"].split(".")[0]: s for s in _pd(cluster, "/pd/api/v1/stores")["stores"]}
    victim_id = stores["tikv-1"]["store"]["id"]
    leaders_before = {r["id"]: r["leader"]["store_id"] for r in _pd(cluster, "/pd/api/v1/regions")["regions"]}
    policy = partition_policy(
        name="chaosdemo-partition-test",
        namespace=cluster.namespace,
        victim={"statefulset.kubernetes.io/pod-name": "tikv-1"},
        component_key="app.kubernetes.io/component",
        cut_from=["pd"],
        drill_uid="test",
    )
    probe = Prober(cluster, tmp_path / "probe.jsonl")
    try:
        cluster.control_plane.kubectl("apply", "-f", "-", input=json.dumps(policy))
        cut_at = time.time()
        wait_for(
            lambda: _pd(cluster, f"/pd/api/v1/store/{victim_id}")["store"]["state_name"] == "Disconnected",
            30,
            "PD to lose tikv-1",
        )
        leaders_during = {
            r["id"]: r["leader"]["store_id"] for r in _pd(cluster, "/pd/api/v1/regions")["regions"]
        }
        reports = _unreachable_reports(stores["tikv-0"]["store"]["status_address"], victim_id)
        answers = _answers(stores["tikv-1"]["store"]["status_address"])
    finally:
        seen = probe.stop()
    assert leaders_during == leaders_before, "Raft is untouched: no election"
    assert reports == 0 and answers, "its peers and the host still reach it"
    after_cut = [r for r in seen if r.started > cut_at]
    assert {r.region_id for r in after_cut} == set(leaders_before)
    assert all(r.outcome == Outcome.OK for r in after_cut), [r for r in after_cut if r.outcome != Outcome.OK][
        :3
    ]
