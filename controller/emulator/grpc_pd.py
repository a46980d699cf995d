"""PD's gRPC service (kvproto's ``pdpb.PD``) over the emulated cluster: what a TiKV client asks
PD. The same state as PD's HTTP API: members and their leader, stores, regions by key and by
id with their leaders as PD last heard them (a dead leader stays PD's answer until the election
moves it: PD learns of a new leader from its heartbeat), timestamps.

A PD without a leader answers as a PD follower does: UNAVAILABLE, "not leader".
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from controller.emulator import kvproto
from controller.emulator.model import TIKV_VERSION, EmulatedCluster, Region, Store

# TSO: physical milliseconds and an 18-bit logical counter, as PD hands them out.
TSO_LOGICAL_BITS = 18


def member_urls(cluster: EmulatedCluster, pd_url: str, name: str, index: int) -> tuple[list[str], list[str]]:
    """(peer URLs, client URLs) of a PD member: the first is the emulator's own address."""
    peer = [f"http://{name}.pd-peer.{cluster.namespace}.svc:2380"]
    client = [pd_url if index == 0 else f"http://{name}.pd-peer.{cluster.namespace}.svc:2379"]
    return peer, client


class PDService:
    """Registered on a grpc.aio server with ``pdpb_pb2_grpc.add_PDServicer_to_server``."""

    def __init__(self, cluster: EmulatedCluster, pd_url: str) -> None:
        self.cluster = cluster
        self.pd_url = pd_url
        self.pdpb = kvproto.pdpb()
        self.metapb = kvproto.metapb()
        self._last_tso = (0, 0)

    # -- helpers ---------------------------------------------------------------------------------
    def _header(self) -> Any:
        return self.pdpb.ResponseHeader(cluster_id=self.cluster.cluster_id)

    async def _need_leader(self, context: grpc.aio.ServicerContext) -> None:
        self.cluster.tick()
        if self.cluster.pd_leader is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not leader")

    def _member(self, name: str, index: int) -> Any:
        peer, client = member_urls(self.cluster, self.pd_url, name, index)
        return self.pdpb.Member(
            name=name, member_id=1_000_000_000_000 + index, peer_urls=peer, client_urls=client
        )

    def _store(self, store: Store) -> Any:
        m = self.metapb
        state = m.StoreState.Up  # PD keeps a Disconnected or Down store Up in its metadata
        return m.Store(
            id=store.id,
            address=store.address,
            state=state,
            labels=[m.StoreLabel(key=k, value=v) for k, v in sorted(store.labels.items())],
            version=TIKV_VERSION,
            peer_address=store.address,
            status_address=store.status_address,
            start_timestamp=int(store.start_timestamp),
            last_heartbeat=int(store.last_heartbeat * 1e9),
            node_state=m.NodeState.Serving,
        )

    def _peer(self, region: Region, store_id: int) -> Any:
        role = (
            self.metapb.PeerRole.Learner
            if store_id == region.learner_store_id
            else self.metapb.PeerRole.Voter
        )
        return self.metapb.Peer(id=region.peer_id(store_id), store_id=store_id, role=role)

    def _region(self, region: Region) -> Any:
        stores = region.peer_store_ids + ([region.learner_store_id] if region.learner_store_id else [])
        return self.metapb.Region(
            id=region.id,
            start_key=region.start,
            end_key=region.end,
            region_epoch=self.metapb.RegionEpoch(conf_ver=region.conf_ver, version=region.version),
            peers=[self._peer(region, sid) for sid in stores],
        )

    def _region_response(self, region: Region | None) -> Any:
        if region is None:
            return self.pdpb.GetRegionResponse(header=self._header())
        return self.pdpb.GetRegionResponse(
            header=self._header(),
            region=self._region(region),
            leader=self._peer(region, region.leader_store_id),
        )

    # -- the service -----------------------------------------------------------------------------
    async def GetMembers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.cluster.tick()
        members = [self._member(n, i) for i, n in enumerate(self.cluster.pd_members)]
        leader = next((m for m in members if m.name == self.cluster.pd_leader), None)
        response = self.pdpb.GetMembersResponse(header=self._header(), members=members)
        if leader is not None:
            response.leader.CopyFrom(leader)
            response.etcd_leader.CopyFrom(leader)
        return response

    async def GetClusterInfo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.pdpb.GetClusterInfoResponse(header=self._header())

    async def GetStore(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        store = self.cluster.store_by_id(request.store_id)
        if store is None:
            header = self._header()
            header.error.type = self.pdpb.ErrorType.UNKNOWN
            header.error.message = f"invalid store ID {request.store_id}, not found"
            return self.pdpb.GetStoreResponse(header=header)
        return self.pdpb.GetStoreResponse(header=self._header(), store=self._store(store))

    async def GetAllStores(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        stores = sorted(self.cluster.stores.values(), key=lambda s: s.id)
        return self.pdpb.GetAllStoresResponse(header=self._header(), stores=[self._store(s) for s in stores])

    async def GetRegion(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        return self._region_response(self.cluster.region_for_key(request.region_key))

    async def GetPrevRegion(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        index = self.cluster.region_index_for_key(request.region_key)
        return self._region_response(self.cluster.regions[index - 1] if index else None)

    async def GetRegionByID(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        return self._region_response(self.cluster.region_by_id(request.region_id))

    async def ScanRegions(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._need_leader(context)
        start, end = bytes(request.start_key), bytes(request.end_key)
        found: list[Region] = []
        index = self.cluster.region_index_for_key(start) or 0
        for region in self.cluster.regions[index:]:
            if end and region.start >= end:
                break
            found.append(region)
            if request.limit > 0 and len(found) >= request.limit:
                break
        response = self.pdpb.ScanRegionsResponse(header=self._header())
        for region in found:
            meta, leader = self._region(region), self._peer(region, region.leader_store_id)
            response.region_metas.append(meta)
            response.leaders.append(leader)
            response.regions.append(self.pdpb.Region(region=meta, leader=leader))
        return response

    async def Tso(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        async for request in requests:
            await self._need_leader(context)
            physical = int(time.time() * 1000)
            last_physical, last_logical = self._last_tso
            logical = last_logical + request.count if physical <= last_physical else request.count
            physical = max(physical, last_physical)
            self._last_tso = (physical, logical)
            yield self.pdpb.TsoResponse(
                header=self._header(),
                count=request.count,
                timestamp=self.pdpb.Timestamp(physical=physical, logical=logical),
            )
