"""TiKV's gRPC service (kvproto's ``tikvpb.Tikv``), raw KV, one server per live store.

What a client meets, as on a real store: a request names a region (id, epoch, peer) in its
``kvrpcpb.Context``. The store answers it only as that region's leader; otherwise it says why
inside a successful response (``region_error``), and the client asks PD again and retries:

- NotLeader: the store holds a follower, or was the leader and restarted (it lost its term).
  The hint is the leader it knows of: none while the region elects one (the client backs off).
- EpochNotMatch: the region's epoch moved (a replica was rebuilt): here are the current ones.
- RegionNotFound: the store holds no peer of that region.
- KeyNotInRegion: the key is outside the region's range.

A stopped store has no server: connections are refused, as on a pod whose TiKV is gone.

Every request handled is counted in ``tikv_grpc_msg_duration_seconds`` (type ``raw_get`` …), and
none in ``tikv_grpc_msg_fail_total``: TiKV counts a gRPC failure only when sending the response
fails, never a region error, which is a successful response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from controller.emulator import kvproto
from controller.emulator.model import EmulatedCluster, Region

# How often a request the network drops looks again whether the cut has healed.
DROPPED_RECHECK_SECONDS = 0.05


@dataclass
class RawData:
    """The cluster's raw key-value data (the default column family), one copy: Raft keeps the
    replicas equal, and only a region's leader serves, so one copy answers what any would."""

    values: dict[bytes, bytes] = field(default_factory=dict)


class TikvService:
    """One store's service; registered with ``tikvpb_pb2_grpc.add_TikvServicer_to_server``."""

    def __init__(self, cluster: EmulatedCluster, pod: str, data: RawData) -> None:
        self.cluster = cluster
        self.pod = pod
        self.data = data
        self.kvrpcpb = kvproto.kvrpcpb()
        self.errorpb = kvproto.errorpb()
        self.metapb = kvproto.metapb()
        self.tikvpb = kvproto.tikvpb()

    # -- the region check every request goes through --------------------------------------------
    def _region_error(self, ctx: Any, keys: list[bytes]) -> Any | None:
        self.cluster.tick()
        store = self.cluster.stores.get(self.pod)
        region = self.cluster.region_by_id(ctx.region_id)
        e = self.errorpb
        if (
            store is None
            or region is None
            or store.id not in [*region.peer_store_ids, region.learner_store_id]
        ):
            return e.Error(
                message="region not found", region_not_found=e.RegionNotFound(region_id=ctx.region_id)
            )
        epoch = ctx.region_epoch
        if epoch.version != region.version or epoch.conf_ver != region.conf_ver:
            return e.Error(
                message="epoch not match",
                epoch_not_match=e.EpochNotMatch(current_regions=[self._meta(region)]),
            )
        leader = self.cluster.serving_leader(region)
        if leader != store.id:
            hint = e.NotLeader(region_id=region.id)
            if leader is not None:
                hint.leader.CopyFrom(self._peer(region, leader))
            return e.Error(message=f"peer is not leader for region {region.id}", not_leader=hint)
        for key in keys:
            if not region.holds(key):
                return e.Error(
                    message="key not in region",
                    key_not_in_region=e.KeyNotInRegion(
                        key=key, region_id=region.id, start_key=region.start, end_key=region.end
                    ),
                )
        return None

    def _peer(self, region: Region, store_id: int) -> Any:
        return self.metapb.Peer(id=region.peer_id(store_id), store_id=store_id)

    def _meta(self, region: Region) -> Any:
        m = self.metapb
        return m.Region(
            id=region.id,
            start_key=region.start,
            end_key=region.end,
            region_epoch=m.RegionEpoch(conf_ver=region.conf_ver, version=region.version),
            peers=[self._peer(region, sid) for sid in region.peer_store_ids],
        )

    def _dropped(self, region_id: int) -> bool:
        """Does the network drop this request? The client cannot reach the store, or the store
        is cut off from a quorum of the region (it can neither serve it nor say who leads it)."""
        store = self.cluster.stores.get(self.pod)
        if store is None or not self.cluster.network.enforced:
            return False
        if not self.cluster.network.clients_reach(self.pod):
            return True
        region = self.cluster.region_by_id(region_id)
        return region is not None and self.cluster.cut_from_quorum(region, store)

    async def _answer(self, ctx: Any, keys: list[bytes], response: Any, serve: Callable[[Any], None]) -> Any:
        """Every raw call: the network, the region check, then the call's own work, counted as
        TiKV counts a handled request (a region error is a handled, successful response). A
        request the network drops gets no answer until the cut heals: the client's own
        deadline ends it first, as with a dropped packet."""
        while self._dropped(ctx.region_id):
            await asyncio.sleep(DROPPED_RECHECK_SECONDS)
            self.cluster.tick()
        started = time.perf_counter()
        error = self._region_error(ctx, keys)
        if error is not None:
            response.region_error.CopyFrom(error)
        else:
            serve(response)
        store = self.cluster.stores.get(self.pod)
        if store is not None:
            store.record_requests(1, time.perf_counter() - started)
        return response

    # -- raw KV ------------------------------------------------------------------------------------
    async def RawGet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(response: Any) -> None:
            value = self.data.values.get(request.key)
            if value is None:
                response.not_found = True
            else:
                response.value = value

        return await self._answer(request.context, [request.key], self.kvrpcpb.RawGetResponse(), serve)

    async def RawBatchGet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(response: Any) -> None:
            for key in request.keys:
                if (value := self.data.values.get(key)) is not None:
                    response.pairs.append(self.kvrpcpb.KvPair(key=key, value=value))

        return await self._answer(
            request.context, list(request.keys), self.kvrpcpb.RawBatchGetResponse(), serve
        )

    async def RawPut(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(_: Any) -> None:
            self.data.values[bytes(request.key)] = bytes(request.value)

        return await self._answer(request.context, [request.key], self.kvrpcpb.RawPutResponse(), serve)

    async def RawBatchPut(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(_: Any) -> None:
            for pair in request.pairs:
                self.data.values[bytes(pair.key)] = bytes(pair.value)

        keys = [p.key for p in request.pairs]
        return await self._answer(request.context, keys, self.kvrpcpb.RawBatchPutResponse(), serve)

    async def RawDelete(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(_: Any) -> None:
            self.data.values.pop(bytes(request.key), None)

        return await self._answer(request.context, [request.key], self.kvrpcpb.RawDeleteResponse(), serve)

    async def RawBatchDelete(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(_: Any) -> None:
            for key in request.keys:
                self.data.values.pop(bytes(key), None)

        return await self._answer(
            request.context, list(request.keys), self.kvrpcpb.RawBatchDeleteResponse(), serve
        )

    async def RawScan(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def serve(response: Any) -> None:
            region = self.cluster.region_by_id(request.context.region_id)
            assert region is not None  # the region check found it
            end = bytes(request.end_key)
            keys = sorted(
                k
                for k in self.data.values
                if k >= request.start_key and (not end or k < end) and (not region.end or k < region.end)
            )
            for key in keys[: request.limit or None]:
                value = b"" if request.key_only else self.data.values[key]
                response.kvs.append(self.kvrpcpb.KvPair(key=key, value=value))

        return await self._answer(request.context, [request.start_key], self.kvrpcpb.RawScanResponse(), serve)

    # -- BatchCommands: Go's client (client-go: go-ycsb, TiDB) sends everything over one stream ----
    BATCHED = ("RawGet", "RawBatchGet", "RawPut", "RawBatchPut", "RawDelete", "RawBatchDelete", "RawScan")

    async def BatchCommands(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        """Each request in a batch is answered as its unary call would be, with its id; a command
        this store does not serve is a gRPC error, as it would be unary."""
        batch_pb = self.tikvpb
        async for batch in requests:
            response = batch_pb.BatchCommandsResponse(request_ids=batch.request_ids)
            for request in batch.requests:
                kind = request.WhichOneof("cmd")
                one = response.responses.add()
                if kind == "Empty":
                    one.Empty.test_id = request.Empty.test_id
                elif kind in self.BATCHED:
                    answer = await getattr(self, kind)(getattr(request, kind), context)
                    getattr(one, kind).CopyFrom(answer)
                else:
                    await context.abort(
                        grpc.StatusCode.UNIMPLEMENTED, f"{kind} is not served by the emulator"
                    )
            yield response
