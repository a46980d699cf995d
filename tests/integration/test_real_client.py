"""TiKV's own client in the loop: ``tikv-client`` (TiKV's Rust client, its Python binding from
PyPI), which no one here wrote, talks to the emulator over PD's and TiKV's real gRPC protocols
(kvproto), resolving the stores' advertised names through the sandbox's stand-in for cluster
DNS. What it meets is the test's evidence; the emulator's own record of each election is the
truth it is compared with."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from controller.client_probe.model import Outcome
from controller.sandbox.binaries import go_ycsb_binary
from controller.sandbox.tikv import TikvCluster
from controller.ui.client_load import YCSB_LINE
from tests.support.drills import patience, wait_for
from tests.support.rust_client import Prober, client_env, run_client

# A request started this long after the election may still meet the client's cached (dead)
# leader once, then asks PD again: its first back-off steps are milliseconds.
AFTER_ELECTION_SLACK = 0.5

WRITE_AND_READ = """
async def main(pd, *keys):
    client = await RawClient.connect([pd])
    for key in keys:
        await client.put(bytes.fromhex(key), b"value-" + key.encode())
    got = {key: (await client.get(bytes.fromhex(key))) for key in keys}
    print(json.dumps({k: v.decode() if v is not None else None for k, v in got.items()}))
"""


def _pd_regions(cluster: TikvCluster) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{cluster.pd_url}/pd/api/v1/regions", timeout=10) as r:
        return json.loads(r.read())["regions"]  # type: ignore[no-any-return]


def test_the_real_client_writes_and_reads_in_every_region(tikv_cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(with_prometheus=False)
    regions = _pd_regions(cluster)
    # A key inside each region (PD shows keys in hex): its start key and one more byte.
    keys = [region["start_key"] + "01" for region in regions]
    result = run_client(cluster, WRITE_AND_READ, *keys)
    read = json.loads(result)
    assert read == {key: f"value-{key}" for key in keys}
    assert len(regions) == 24 and len(set(keys)) == 24


def test_a_pod_kill_stalls_only_the_victims_regions_until_their_election(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(with_prometheus=False, time_scale=0.3)
    leaders_before = {r["id"]: r["leader"]["store_id"] for r in _pd_regions(cluster)}
    probe = Prober(cluster, tmp_path / "probe.jsonl")
    records = probe.records

    try:
        wait_for(
            lambda: {r.region_id for r in records() if r.outcome == Outcome.OK} == set(leaders_before),
            30,
            "every region to answer the client",
        )
        killed_at = time.time()
        cluster.control_plane.kubectl(
            "delete", "pod", "tikv-1", "-n", cluster.namespace, "--grace-period=0", "--force"
        )
        election = wait_for(
            lambda: next((e for e in cluster.admin_state()["elections"] if e["pod"] == "tikv-1"), None),
            30,
            "the emulator to elect new leaders for tikv-1's regions",
        )
        # Long enough after the election for every region to have been read again, twice.
        wait_for(
            lambda: all(
                sum(1 for r in records() if r.region_id == region and r.started > election["elected_at"]) >= 2
                for region in leaders_before
            ),
            30,
            "every region read again after the election",
        )
    finally:
        seen = probe.stop()

    victim_regions = set(election["regions"])
    assert victim_regions == {r for r, store in leaders_before.items() if store == election["store_id"]}
    assert victim_regions and victim_regions != set(leaders_before)
    assert election["died_at"] >= killed_at - 0.01, (election, killed_at)
    for record in seen:
        if record.region_id not in victim_regions:
            assert record.outcome == Outcome.OK, ("another region did not answer", record)
        elif record.ended < election["died_at"]:
            assert record.outcome == Outcome.OK, ("failed before the kill", record)
        elif record.started > election["elected_at"] + AFTER_ELECTION_SLACK:
            assert record.outcome == Outcome.OK, ("still failing after the election", record, election)
    during = [
        r
        for r in seen
        if r.region_id in victim_regions and election["died_at"] <= r.started < election["elected_at"] - 0.5
    ]
    assert during and all(r.outcome != Outcome.OK for r in during), (
        "every read of the victim's regions between the kill and the election fails or stalls",
        [
            (r.region_id, r.outcome, round(r.started - election["died_at"], 2))
            for r in during
            if r.outcome == Outcome.OK
        ],
    )


SCAN_COUNT = """
async def main(pd):
    client = await RawClient.connect([pd])
    print(len(await client.scan_keys(b"user", b"usf", 10240)))
"""


def test_go_ycsb_writes_with_gos_client_and_rusts_client_reads_it(tikv_cluster_factory) -> None:  # type: ignore[no-untyped-def]
    """A second real client, written by neither this project nor TiKV's Rust client: go-ycsb
    (YCSB with TiKV's Go client, client-go, which batches every request on one BatchCommands
    stream). It loads 300 records and runs workload A (reads and updates) with no error; TiKV's
    Rust client then finds exactly the records it wrote."""
    cluster = tikv_cluster_factory(with_prometheus=False)
    ycsb = go_ycsb_binary()
    env = {**client_env(cluster), "GODEBUG": "netdns=cgo"}
    common = [
        "-P",
        str(ycsb.with_name("workloada")),
        "-p",
        f"tikv.pd={cluster.pd_address}",
        "-p",
        "tikv.type=raw",
    ]
    counts: dict[str, dict[str, int]] = {}
    for phase, extra in (
        ("load", ["-p", "recordcount=300"]),
        ("run", ["-p", "recordcount=300", "-p", "operationcount=600"]),
    ):
        done = subprocess.run(
            [str(ycsb), phase, "tikv", *common, *extra, "-p", "threadcount=4"],
            env=env,
            capture_output=True,
            text=True,
            timeout=patience(60),
        )
        assert done.returncode == 0, done.stderr[-2000:]
        counts[phase] = {
            m["op"]: int(m["count"]) for m in map(YCSB_LINE.match, done.stdout.splitlines()) if m is not None
        }
    assert counts["load"]["INSERT"] == 300 and not any(op.endswith("_ERROR") for op in counts["load"]), counts
    assert counts["run"]["READ"] + counts["run"]["UPDATE"] == 600, counts
    assert not any(op.endswith("_ERROR") for op in counts["run"]), counts
    assert int(run_client(cluster, SCAN_COUNT).strip()) == 300
