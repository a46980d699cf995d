"""What TiKV's raw KV service answers, region by region, as a client meets it (kvproto's own
messages, generated at set-up): only a region's leader serves; a follower says NotLeader with
the leader it knows, none while the region elects; a stale epoch, a region the store holds no
peer of and a key outside the region are refused with TiKV's region errors."""

from __future__ import annotations

from typing import Any

from controller.emulator import kvproto
from controller.emulator.grpc_tikv import RawData, TikvService
from controller.emulator.model import EmulatedCluster, Region


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _cluster() -> tuple[EmulatedCluster, Clock]:
    clock = Clock()
    cluster = EmulatedCluster(namespace="tikv", clock=clock, time_scale=0.1)  # type: ignore[arg-type]
    for i in range(3):
        cluster.pod_ready(f"tikv-{i}")
    cluster.pd_member_up("pd-0")
    clock.now += 1
    cluster.tick()
    return cluster, clock


def _context(region: Region, **epoch: int) -> Any:
    kvrpcpb, metapb = kvproto.kvrpcpb(), kvproto.metapb()
    return kvrpcpb.Context(
        region_id=region.id,
        region_epoch=metapb.RegionEpoch(
            conf_ver=epoch.get("conf_ver", region.conf_ver), version=epoch.get("version", region.version)
        ),
    )


def _service(cluster: EmulatedCluster, store_id: int, data: RawData) -> TikvService:
    pod = next(s.pod for s in cluster.stores.values() if s.id == store_id)
    return TikvService(cluster, pod, data)


async def _get(service: TikvService, region: Region, key: bytes, **epoch: int) -> Any:
    request = kvproto.kvrpcpb().RawGetRequest(context=_context(region, **epoch), key=key)
    return await service.RawGet(request, None)  # type: ignore[arg-type]


async def test_only_the_leader_serves_and_a_follower_names_it() -> None:
    cluster, _ = _cluster()
    data = RawData({b"k": b"v"})
    region = cluster.region_for_key(b"k")
    assert region is not None
    leader = region.leader_store_id
    follower = next(s for s in region.peer_store_ids if s != leader)
    answered = await _get(_service(cluster, leader, data), region, b"k")
    assert not answered.HasField("region_error") and answered.value == b"v"
    refused = await _get(_service(cluster, follower, data), region, b"k")
    assert refused.region_error.HasField("not_leader")
    assert refused.region_error.not_leader.leader.store_id == leader


async def test_while_the_region_elects_no_one_serves_and_no_leader_is_named() -> None:
    cluster, clock = _cluster()
    data = RawData()
    region = cluster.region_for_key(b"k")
    assert region is not None
    leader_pod = next(s.pod for s in cluster.stores.values() if s.id == region.leader_store_id)
    follower = next(s for s in region.peer_store_ids if s != region.leader_store_id)
    cluster.pod_gone(leader_pod)
    refused = await _get(_service(cluster, follower, data), region, b"k")
    assert refused.region_error.HasField("not_leader") and not refused.region_error.not_leader.HasField(
        "leader"
    )
    # Back before its election finished: the restarted leader lost its term, and does not serve.
    cluster.pod_ready(leader_pod)
    again = await _get(_service(cluster, region.leader_store_id, data), region, b"k")
    assert again.region_error.HasField("not_leader")
    clock.now += 10  # past the (scaled) election timeout
    cluster.tick()
    assert cluster.elections and cluster.elections[-1].pod == leader_pod
    assert region.id in cluster.elections[-1].regions
    new_leader = cluster.serving_leader(region)
    assert new_leader is not None and new_leader != cluster.stores[leader_pod].id
    served = await _get(_service(cluster, new_leader, data), region, b"k")
    assert not served.HasField("region_error") and served.not_found


async def test_stale_epochs_foreign_regions_and_keys_outside_are_refused() -> None:
    cluster, _ = _cluster()
    data = RawData()
    region = cluster.region_for_key(b"k")
    assert region is not None
    leader = _service(cluster, region.leader_store_id, data)
    stale = await _get(leader, region, b"k", version=region.version - 1)
    assert stale.region_error.HasField("epoch_not_match")
    assert stale.region_error.epoch_not_match.current_regions[0].id == region.id
    first = cluster.regions[0]  # [b"", its end): a key past the end is not in it
    first_leader = _service(cluster, first.leader_store_id, data)
    outside = await _get(first_leader, first, first.end + b"x")
    assert outside.region_error.HasField("key_not_in_region"), outside
    request = kvproto.kvrpcpb().RawGetRequest(context=kvproto.kvrpcpb().Context(region_id=999_999), key=b"k")
    unknown = await leader.RawGet(request, None)  # type: ignore[arg-type]
    assert unknown.region_error.HasField("region_not_found"), unknown
