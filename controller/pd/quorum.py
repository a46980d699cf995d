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
class MajorityEstimate:
    """Whether regions kept their Raft majority, derived from the stores alone (no region list):
    ``lost`` True (every region lost it), False (none can have) or None (it cannot be known)."""

    lost: bool | None
    words: str


def estimate_majority(voting_stores: int, away: int, max_replicas: int | None) -> MajorityEstimate:
    """Each region has ``max_replicas`` voters on distinct stores. With ``away`` of
    ``voting_stores`` stores unable to vote: no region loses its majority while fewer stores are
    away than it takes; every region has lost it when each store holds a replica of every region
    (as many stores as replicas) or when fewer stores are left than a majority; otherwise it
    depends on where each region's replicas are, which only PD's region list says."""
    if max_replicas is None:
        return MajorityEstimate(None, "unknown: neither PD's regions nor its max-replicas were available")
    need = majority(max_replicas)
    fatal = max_replicas - need + 1  # voters a region must lose to lose its majority
    said = f"{away} of {voting_stores} stores away, {max_replicas} replicas need {need} to vote"
    if away < fatal:
        return MajorityEstimate(False, f"no region can have lost its Raft majority ({said})")
    if voting_stores <= max_replicas or voting_stores - away < need:
        return MajorityEstimate(True, f"every region lost its Raft majority ({said})")
    return MajorityEstimate(
        None,
        f"some regions may have lost their Raft majority ({said}); which, only PD's region list says",
    )


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
