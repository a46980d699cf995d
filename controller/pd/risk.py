"""Which regions can be short of a Raft majority, asked of PD without its whole region list
(10^5-10^6 regions in real clusters): PD's region checks, and the regions of chosen stores."""

from __future__ import annotations

import asyncio

from controller.pd.client import PDClient
from controller.pd.models import RegionCheck, StoreInfo


async def regions_at_risk(
    pd: PDClient, stores: list[StoreInfo], victims: frozenset[int], risky: RegionCheck | None = None
) -> RegionCheck:
    """Every region that can be short of a healthy Raft majority now, without PD's whole region
    list (10^5-10^6 regions in real clusters, on every step):

    - a region with a down or a pending peer is in PD's region checks (small when healthy);
    - a region's voters can be lost only to stores that are not Up. While those are the victims
      alone, preflight showed that every region keeps its majority without them, so only the
      region checks can add a risk; once another store is not Up, the regions of every store
      that is not Up are asked for (``/regions/store/{id}``), victims included.
    The answer holds every region with a down or pending peer, so it also says which of the
    victims' regions are unhealthy. ``risky``: PD's region checks, when already asked (together
    with the stores, so one look takes one round trip)."""
    risky = risky if risky is not None else await pd.unhealthy_regions()
    not_up = [s.id for s in stores if s.store.state_name != "Up"]
    if not set(not_up) - victims:
        return risky
    by_id = {r.id: r for r in risky.regions}
    for store_id in not_up:
        for region in (await pd.regions_of_store(store_id)).regions:
            by_id.setdefault(region.id, region)
    return RegionCheck(count=len(by_id), regions=list(by_id.values()))


async def regions_for_quorum_check(
    pd: PDClient, stores: list[StoreInfo], candidates: frozenset[int], count: int
) -> RegionCheck:
    """Preflight's quorum check without PD's whole region list (10^5-10^6 regions):

    a region can lose its Raft majority to ``count`` kills only if it is already short (a down,
    pending or missing peer: PD's region checks), has a peer on a store that is not Up, or holds
    voters on two of the stores that may be killed together. With one kill and a healthy cluster
    that is the region checks alone; with several, the candidates' regions are asked for too
    (``/regions/store/{id}``, once per drill)."""
    risky, missing = await asyncio.gather(pd.unhealthy_regions(), pd.region_check("miss-peer"))
    ask = {s.id for s in stores if s.store.state_name != "Up"}
    if count > 1:
        ask |= candidates
    by_id = {r.id: r for r in [*risky.regions, *missing.regions]}
    for store_id in sorted(ask):
        for region in (await pd.regions_of_store(store_id)).regions:
            by_id.setdefault(region.id, region)
    return RegionCheck(count=len(by_id), regions=list(by_id.values()))
