"""The recovery look does not download PD's whole region list on every step: it asks PD's region
checks (small when healthy), and the regions of stores that are not Up only once a store beyond
the victims is down; what it finds is still every region that lost its majority."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from controller.emulator.model import EmulatedCluster
from controller.emulator.pd_api import make_pd_app
from controller.pd import PDClient
from controller.pd.quorum import region_peers, regions_losing_majority
from controller.pd.risk import regions_at_risk, regions_for_quorum_check


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pd_and_cluster() -> AsyncIterator[tuple[PDClient, EmulatedCluster, list[str], Clock]]:
    clock = Clock()
    cluster = EmulatedCluster(namespace="tikv", clock=clock, time_scale=0.1)  # type: ignore[arg-type]
    for i in range(3):
        cluster.pod_ready(f"tikv-{i}")
    for i in range(3):
        cluster.pd_member_up(f"pd-{i}")
    clock.now += 10
    cluster.tick()
    asked: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        asked.append(request.path)
        return await handler(request)

    app = make_pd_app(cluster, "")
    app.middlewares.append(record)
    server = TestServer(app)
    await server.start_server()
    pd = PDClient(str(server.make_url("")))
    try:
        yield pd, cluster, asked, clock
    finally:
        await pd.aclose()
        await server.close()


async def test_only_the_region_checks_while_only_the_victims_are_down(pd_and_cluster) -> None:  # type: ignore[no-untyped-def]
    pd, cluster, asked, _ = pd_and_cluster
    cluster.pod_gone("tikv-1")
    stores = await pd.stores()
    asked.clear()
    regions = await regions_at_risk(pd, stores, frozenset({2}))
    assert "/pd/api/v1/regions" not in asked and not any("/regions/store/" in a for a in asked), asked
    assert sorted(asked) == ["/pd/api/v1/regions/check/down-peer", "/pd/api/v1/regions/check/pending-peer"]
    assert regions_losing_majority(region_peers(regions, stores), frozenset(), frozenset({2})) == []


async def test_another_store_down_brings_in_the_regions_of_every_store_not_up(pd_and_cluster) -> None:  # type: ignore[no-untyped-def]
    pd, cluster, asked, clock = pd_and_cluster
    cluster.pod_gone("tikv-1")
    cluster.pod_gone("tikv-2")
    clock.now += 3  # past Disconnected (20 s, scaled): PD shows both stores not Up
    stores = await pd.stores()
    assert {s.id for s in stores if s.store.state_name != "Up"} == {2, 3}
    asked.clear()
    regions = await regions_at_risk(pd, stores, frozenset({2}))
    assert {"/pd/api/v1/regions/store/2", "/pd/api/v1/regions/store/3"} <= set(asked), asked
    assert "/pd/api/v1/regions" not in asked
    # Three replicas on three stores, two of them gone: every region lost its majority, and the
    # view says so exactly as PD's whole list would.
    whole = await pd.regions()
    gone = frozenset({2, 3})
    expected = regions_losing_majority(region_peers(whole, stores), frozenset(), gone)
    assert expected and regions_losing_majority(region_peers(regions, stores), frozenset(), gone) == expected


async def test_preflight_of_one_kill_on_a_healthy_cluster_asks_only_the_region_checks(pd_and_cluster) -> None:  # type: ignore[no-untyped-def]
    pd, _, asked, _ = pd_and_cluster
    stores = await pd.stores()
    asked.clear()
    regions = await regions_for_quorum_check(pd, stores, frozenset({1, 2, 3}), count=1)
    assert sorted(asked) == [
        "/pd/api/v1/regions/check/down-peer",
        "/pd/api/v1/regions/check/miss-peer",
        "/pd/api/v1/regions/check/pending-peer",
    ]
    assert regions.regions == []


async def test_preflight_of_two_kills_finds_what_the_whole_list_finds(pd_and_cluster) -> None:  # type: ignore[no-untyped-def]
    pd, _, asked, _ = pd_and_cluster
    stores = await pd.stores()
    asked.clear()
    regions = await regions_for_quorum_check(pd, stores, frozenset({1, 2}), count=2)
    assert {"/pd/api/v1/regions/store/1", "/pd/api/v1/regions/store/2"} <= set(asked), asked
    assert "/pd/api/v1/regions" not in asked
    whole = await pd.regions()
    killed = frozenset({1, 2})
    expected = regions_losing_majority(region_peers(whole, stores), killed, frozenset())
    assert (
        expected and regions_losing_majority(region_peers(regions, stores), killed, frozenset()) == expected
    )
