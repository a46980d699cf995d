"""Raft quorum over PD's regions: which regions keep a majority of healthy voters.

Pure functions shared by the drill's preflight and safety checks and by the diagnosis evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.pd.models import RegionCheck, StoreInfo


def majority(replicas: int) -> int:
    return replicas // 2 + 1


def keeps_majority(up_stores: int, killed: int, max_replicas: int) -> bool:
    """Do regions of ``max_replicas`` replicas keep a Raft majority with ``killed`` more stores
    gone? Counted on stores (each holds at most one replica of a region)."""
    return up_stores - killed >= majority(max_replicas)


@dataclass(frozen=True)
class RegionPeers:
    """A region as the quorum guard sees it: its voters' stores and which of them are already
    unhealthy (down or pending peers)."""

    id: int
    voters: frozenset[int]
    unhealthy: frozenset[int] = frozenset()


def is_tiflash(store: StoreInfo) -> bool:
    return any(lb.key == "engine" and lb.value == "tiflash" for lb in store.store.labels)


def region_peers(regions: RegionCheck, stores: list[StoreInfo]) -> list[RegionPeers]:
    """PD's regions as voters per region: learners and TiFlash stores (label engine=tiflash)
    hold replicas that never vote."""
    tiflash = {s.id for s in stores if is_tiflash(s)}
    out = []
    for r in regions.regions:
        voters = frozenset(
            p.store_id for p in r.peers if p.role_name != "Learner" and p.store_id not in tiflash
        )
        unhealthy = frozenset(d.peer.store_id for d in r.down_peers) | frozenset(
            p.store_id for p in r.pending_peers
        )
        out.append(RegionPeers(r.id, voters, unhealthy & voters))
    return out


def regions_losing_majority(
    regions: Sequence[RegionPeers], victims: frozenset[int], gone_stores: frozenset[int]
) -> list[int]:
    """Regions that would be left without a Raft majority of healthy voters once ``victims`` are
    gone too, counting voters already down or pending and stores already not Up (``gone_stores``).
    Learners and TiFlash replicas never vote: they are not in ``voters``."""
    at_risk = []
    for region in regions:
        if not region.voters:
            continue
        lost = region.voters & (victims | gone_stores | region.unhealthy)
        if len(region.voters) - len(lost) < majority(len(region.voters)):
            at_risk.append(region.id)
    return at_risk


def regions_one_loss_from_majority(regions: Sequence[RegionPeers], gone_stores: frozenset[int]) -> list[int]:
    """Regions that still have their majority but would lose it with any one more voter gone."""
    out = []
    for region in regions:
        if not region.voters:
            continue
        healthy = len(region.voters - gone_stores - region.unhealthy)
        if healthy == majority(len(region.voters)):
            out.append(region.id)
    return out
