"""The TiKV emulator bound to real pods, scraped by a real Prometheus."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from controller.pd.formats import parse_duration, parse_rfc3339, parse_size
from controller.sandbox.tikv import TikvCluster

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(predicate, timeout: float, what: str) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


STORE_FIELDS = {
    "id",
    "address",
    "labels",
    "version",
    "peer_address",
    "status_address",
    "git_hash",
    "start_timestamp",
    "deploy_path",
    "last_heartbeat",
    "node_state",
    "state_name",
}
STATUS_FIELDS = {
    "capacity",
    "available",
    "used_size",
    "leader_count",
    "leader_weight",
    "leader_score",
    "leader_size",
    "region_count",
    "region_weight",
    "region_score",
    "region_size",
    "slow_score",
    "start_ts",
    "last_heartbeat_ts",
    "uptime",
}


def test_pd_json_shapes(tikv_cluster: TikvCluster) -> None:
    pd = tikv_cluster.pd_url + "/pd/api/v1"
    status, body = get(f"{pd}/stores")
    assert status == 200 and body["count"] == 3 and len(body["stores"]) == 3
    for item in body["stores"]:
        store, st = item["store"], item["status"]
        assert set(store) == STORE_FIELDS, set(store) ^ STORE_FIELDS
        assert "state" not in store  # omitted when Up, as PD's protobuf JSON does
        assert store["state_name"] == "Up"
        assert set(st) == STATUS_FIELDS, set(st) ^ STATUS_FIELDS
        assert store["address"].endswith(f".tikv-peer.{tikv_cluster.namespace}.svc:20160")
        assert store["last_heartbeat"] > 1e18  # unix nanoseconds
        assert isinstance(store["start_timestamp"], int) and store["start_timestamp"] < 1e11  # seconds
        assert parse_size(st["capacity"]) > parse_size(st["available"]) > 0
        assert st["capacity"].endswith("GiB")
        assert abs(parse_rfc3339(st["last_heartbeat_ts"]) - store["last_heartbeat"] / 1e9) < 1e-3
        assert parse_duration(st["uptime"]) >= 0
    assert sum(i["status"]["leader_count"] for i in body["stores"]) == 24

    first = body["stores"][0]["store"]["id"]
    status, one = get(f"{pd}/store/{first}")
    assert status == 200 and one["store"]["id"] == first and set(one) == {"store", "status"}
    status, missing = get(f"{pd}/store/9")
    assert status == 404 and missing == "[PD:core:ErrStoreNotFound]store 9 not found"

    status, up = get(f"{pd}/stores/check?state=up")
    assert status == 200 and up["count"] == 3
    status, down = get(f"{pd}/stores/check?state=down")
    assert status == 200 and down == {"count": 0, "stores": []}

    status, health = get(f"{pd}/health")
    assert (
        status == 200
        and health
        and all(
            set(m) == {"name", "member_id", "client_urls", "health"} and m["health"] is True for m in health
        )
    )
    assert sorted(m["name"] for m in health) == ["pd-0", "pd-1", "pd-2"]
    status, members = get(f"{pd}/members")
    assert status == 200 and {"header", "members", "leader", "etcd_leader"} <= set(members)
    assert {"name", "member_id", "peer_urls", "client_urls"} <= set(members["members"][0])

    status, config = get(f"{pd}/config")
    assert config["schedule"]["max-store-down-time"] == "30m0s"
    req = urllib.request.Request(f"{pd}/config", data=b'{"max-store-down-time": "1h"}', method="POST")
    with urllib.request.urlopen(req) as r:
        assert json.load(r) == "The config is updated."
    assert get(f"{pd}/config")[1]["schedule"]["max-store-down-time"] == "1h0m0s"

    status, regions = get(f"{pd}/regions/check/down-peer")
    assert status == 200 and regions == {"count": 0, "regions": []}
    assert get(f"{pd}/cluster")[1]["max_peer_count"] == 3
    assert get(f"{pd}/cluster/status")[1]["is_initialized"] is True


def _up_samples(cluster: TikvCluster, pod: str, window: str = "30s") -> list[tuple[float, float]]:
    assert cluster.prometheus is not None
    result = cluster.prometheus.query(f'up{{job="tikv",pod="{pod}"}}[{window}]')
    return [(float(ts), float(v)) for ts, v in result[0]["values"]] if result else []


def _store(cluster: TikvCluster, pod: str) -> dict:
    stores = get(cluster.pd_url + "/pd/api/v1/stores")[1]["stores"]
    return next(s for s in stores if s["store"]["address"].startswith(pod + "."))


def test_kill_drops_up_then_store_returns(tikv_cluster: TikvCluster) -> None:
    cp = tikv_cluster.control_plane
    ns = tikv_cluster.namespace
    before = _store(tikv_cluster, "tikv-1")
    wait_for(lambda: _up_samples(tikv_cluster, "tikv-1", "5s"), 10, "a first up sample for tikv-1")

    # Keep the replacement Pending (no schedulable node) so the store stays away past 20 s scaled.
    nodes = [f"kwok-node-{i}" for i in range(3)]
    cp.kubectl("cordon", *nodes)
    try:
        killed_at = time.time()
        cp.kubectl("delete", "pod", "tikv-1", "-n", ns, "--grace-period=0", "--force", "--wait=false")

        # up goes to 0 at the first scrape after the store went: the moment the emulator saw the
        # pod deleted and closed its status port (its election record's died_at), which follows
        # the delete by however long the watch took to deliver it.
        died_at = wait_for(
            lambda: next(
                (e["died_at"] for e in tikv_cluster.admin_state()["elections"] if e["pod"] == "tikv-1"), None
            ),
            30,
            "the emulator's record of tikv-1 going",
        )
        assert died_at >= killed_at

        def first_sample_after_kill() -> tuple[float, float] | None:
            after = [s for s in _up_samples(tikv_cluster, "tikv-1") if s[0] > died_at]
            return after[0] if after else None

        ts, value = wait_for(first_sample_after_kill, 10, "a scrape after the kill")
        assert value == 0.0, "the first scrape after the kill still saw the store up"
        assert ts - killed_at <= 2 * tikv_cluster.scrape_interval + 0.5

        # 20 s (scaled) without a heartbeat: PD says Disconnected; leaders moved off meanwhile.
        wait_for(
            lambda: _store(tikv_cluster, "tikv-1")["store"]["state_name"] == "Disconnected",
            10,
            "PD to report tikv-1 Disconnected",
        )
        wait_for(
            lambda: _store(tikv_cluster, "tikv-1")["status"]["leader_count"] == 0,
            10,
            "leaders to move off the dead store",
        )
        survivors = [_store(tikv_cluster, p)["status"]["leader_count"] for p in ("tikv-0", "tikv-2")]
        assert sum(survivors) == 24
        # Survivors count unreachable messages to the dead store, and Prometheus has them.
        unreachable = wait_for(
            lambda: tikv_cluster.prometheus.query(  # type: ignore[union-attr]
                'tikv_server_report_failure_msg_total{type="unreachable",store_id="2"} > 0'
            ),
            10,
            "survivors' unreachable counters in Prometheus",
        )
        assert {r["metric"]["pod"] for r in unreachable} == {"tikv-0", "tikv-2"}
        assert get(tikv_cluster.pd_url + "/pd/api/v1/regions/check/pending-peer")[1]["count"] > 0
    finally:
        cp.kubectl("uncordon", *nodes)

    wait_for(lambda: _store(tikv_cluster, "tikv-1")["store"]["state_name"] == "Up", 30, "tikv-1 back Up")
    after = _store(tikv_cluster, "tikv-1")
    assert after["store"]["id"] == before["store"]["id"]
    assert after["store"]["start_timestamp"] > before["store"]["start_timestamp"]
    wait_for(
        lambda: (
            _up_samples(tikv_cluster, "tikv-1", "2s")
            and _up_samples(tikv_cluster, "tikv-1", "2s")[-1][1] == 1.0
        ),
        10,
        "up back to 1",
    )


def test_processes_stop_cleanly(tikv_cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory()
    procs = [cluster.emulator, cluster.prometheus.process]
    assert all(p.alive() for p in procs)
    cluster.stop()
    for p in procs:
        assert not p.alive()
        with pytest.raises(ProcessLookupError):
            import os

            os.kill(p.pid, 0)
