"""PD's HTTP API over the emulated cluster, with PD's JSON shapes and error bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller.emulator.model import (
    TIKV_GIT_HASH,
    TIKV_VERSION,
    EmulatedCluster,
    Region,
    Store,
)
from controller.pd.formats import format_duration, format_rfc3339, format_size, parse_duration

REGION_CHECKS = (
    "miss-peer",
    "extra-peer",
    "pending-peer",
    "down-peer",
    "learner-peer",
    "empty-region",
    "offline-peer",
    "oversized-region",
    "undersized-region",
)
STATE_FILTERS = {
    "up": "Up",
    "disconnected": "Disconnected",
    "down": "Down",
    "offline": "Offline",
    "tombstone": "Tombstone",
    "preparing": "Preparing",
    "serving": "Serving",
    "removing": "Removing",
    "removed": "Removed",
}
PD_VERSION = "v8.5.0"
CLUSTER_KEY: web.AppKey[EmulatedCluster] = web.AppKey("cluster", EmulatedCluster)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, indent=4), status=status, content_type="application/json")


def store_json(cluster: EmulatedCluster, store: Store) -> dict[str, Any]:
    now = cluster.clock()
    leader_count = cluster.leader_count(store)
    region_count = cluster.region_count_of(store)
    meta: dict[str, Any] = {
        "id": store.id,
        "address": store.address,
        # `state` (metapb.StoreState) is omitted when Up=0, as PD's protobuf JSON does.
        "labels": [{"key": k, "value": v} for k, v in sorted(store.labels.items())],
        "version": TIKV_VERSION,
        "peer_address": store.address,
        "status_address": store.status_address,
        "git_hash": TIKV_GIT_HASH,
        "start_timestamp": int(store.start_timestamp),
        "deploy_path": "/",
        "last_heartbeat": int(store.last_heartbeat * 1e9),
        "node_state": 1,
        "state_name": cluster.state_name(store),
    }
    status: dict[str, Any] = {
        "capacity": format_size(store.capacity),
        "available": format_size(store.capacity - store.used),
        "used_size": format_size(store.used),
        "leader_count": leader_count,
        "leader_weight": 1,
        "leader_score": leader_count,
        "leader_size": leader_count * 96,
        "region_count": region_count,
        "region_weight": 1,
        "region_score": float(region_count * 96),
        "region_size": region_count * 96,
        "slow_score": 1,
        "start_ts": format_rfc3339(store.start_timestamp),
        "last_heartbeat_ts": format_rfc3339(store.last_heartbeat),
    }
    if store.alive:
        status["uptime"] = format_duration(now - store.start_timestamp)
    else:
        # PD computes uptime as last heartbeat minus start: it freezes when heartbeats stop.
        status["uptime"] = format_duration(store.last_heartbeat - store.start_timestamp)
    return {"store": meta, "status": status}


def region_json(
    cluster: EmulatedCluster,
    region: Region,
    down_ids: dict[int, list[int]],
    pending_ids: dict[int, list[int]],
) -> dict[str, Any]:
    learner = region.learner_store_id

    def peer(sid: int) -> dict[str, Any]:
        if sid == learner:
            return {"id": region.peer_id(sid), "store_id": sid, "role_name": "Learner", "is_learner": True}
        return {"id": region.peer_id(sid), "store_id": sid, "role_name": "Voter"}

    data: dict[str, Any] = {
        "id": region.id,
        "start_key": region.start_key,
        "end_key": region.end_key,
        "epoch": {"conf_ver": region.conf_ver, "version": region.version},
        "peers": [peer(sid) for sid in region.peer_store_ids + ([learner] if learner else [])],
        "leader": peer(region.leader_store_id),
        "written_bytes": 0,
        "read_bytes": 0,
        "written_keys": 0,
        "read_keys": 0,
        "approximate_size": region.approximate_size_mib,
        "approximate_keys": region.approximate_keys,
    }
    now = cluster.clock()
    down, pending = [], []
    if learner is not None and learner in pending_ids.get(region.id, ()):
        pending.append(peer(learner))
    for sid in region.peer_store_ids:
        store = cluster.store_by_id(sid)
        if store is None or store.died_at is None:
            continue
        if sid in down_ids.get(region.id, ()):
            down.append(
                {
                    "down_seconds": int((now - store.died_at) / max(cluster.time_scale, 1e-9)),
                    "peer": peer(sid),
                }
            )
        if sid in pending_ids.get(region.id, ()):
            pending.append(peer(sid))
    if down:
        data["down_peers"] = down
    if pending:
        data["pending_peers"] = pending
    return data


# Served by whichever member is asked; everything else a follower forwards to the leader.
MEMBER_LOCAL_PATHS = frozenset(
    {"/pd/api/v1/health", "/pd/api/v1/members", "/pd/api/v1/leader", "/pd/api/v1/ping"}
)


def _no_leader_middleware(cluster: EmulatedCluster) -> Any:
    @web.middleware
    async def no_leader(request: web.Request, handler: Any) -> web.StreamResponse:
        """While the PD members elect a leader, a follower has nowhere to forward an API call."""
        if request.path.startswith("/pd/api/") and request.path not in MEMBER_LOCAL_PATHS:
            cluster.tick()
            if cluster.pd_leader is None:
                return _json("[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader", status=500)
        response: web.StreamResponse = await handler(request)
        return response

    return no_leader


def make_pd_app(cluster: EmulatedCluster, pd_url: str) -> web.Application:
    app = web.Application(middlewares=[_no_leader_middleware(cluster)])
    app[CLUSTER_KEY] = cluster
    routes = web.RouteTableDef()

    def stores_payload(state_filter: set[str] | None = None) -> dict[str, Any]:
        cluster.tick()
        items = [store_json(cluster, s) for s in sorted(cluster.stores.values(), key=lambda s: s.id)]
        if state_filter is not None:
            items = [
                i
                for i in items
                if i["store"]["state_name"] in state_filter
                or ("Serving" in state_filter and i["store"]["node_state"] == 1)
            ]
        return {"count": len(items), "stores": items}

    @routes.get("/pd/api/v1/stores")
    async def stores(request: web.Request) -> web.Response:
        return _json(stores_payload())

    @routes.get("/pd/api/v1/stores/check")
    async def stores_check(request: web.Request) -> web.Response:
        wanted = request.query.getall("state", [])
        try:
            names = {STATE_FILTERS[w.lower()] for w in wanted}
        except KeyError as exc:
            return _json(f"[PD:apiutil:ErrBadRequest]unknown state: {exc.args[0]}", status=400)
        return _json(stores_payload(names or None))

    @routes.get("/pd/api/v1/store/{store_id}")
    async def store(request: web.Request) -> web.Response:
        raw = request.match_info["store_id"]
        try:
            store_id = int(raw)
        except ValueError:
            return _json(
                f'[PD:apiutil:ErrParseUint]strconv.ParseUint: parsing "{raw}": invalid syntax', status=400
            )
        cluster.tick()
        found = cluster.store_by_id(store_id)
        if found is None:
            return _json(f"[PD:core:ErrStoreNotFound]store {store_id} not found", status=404)
        return _json(store_json(cluster, found))

    def member(name: str, index: int) -> dict[str, Any]:
        return {
            "name": name,
            "member_id": 1_000_000_000_000 + index,
            "peer_urls": [f"http://{name}.pd-peer.{cluster.namespace}.svc:2380"],
            "client_urls": [pd_url if index == 0 else f"http://{name}.pd-peer.{cluster.namespace}.svc:2379"],
            "deploy_path": "/",
            "binary_version": PD_VERSION,
            "git_hash": "b2ee8f5c3f06a2d2b6e1e6f1b4d4bba1ea43b1c2",
        }

    @routes.get("/pd/api/v1/health")
    async def health(request: web.Request) -> web.Response:
        cluster.tick()
        return _json(
            [
                {
                    "name": m["name"],
                    "member_id": m["member_id"],
                    "client_urls": m["client_urls"],
                    "health": m["name"] not in cluster.pd_down,
                }
                for m in (member(n, i) for i, n in enumerate(cluster.pd_members))
            ]
        )

    @routes.get("/pd/api/v1/members")
    async def members(request: web.Request) -> web.Response:
        cluster.tick()
        ms = [member(n, i) for i, n in enumerate(cluster.pd_members)]
        body: dict[str, Any] = {"header": {"cluster_id": cluster.cluster_id}, "members": ms}
        leader = next((m for m in ms if m["name"] == cluster.pd_leader), None)
        if leader is not None:  # PD omits the leader while there is none
            body["leader"] = leader
            body["etcd_leader"] = leader
        return _json(body)

    @routes.get("/pd/api/v1/leader")
    async def leader(request: web.Request) -> web.Response:
        cluster.tick()
        ms = [member(n, i) for i, n in enumerate(cluster.pd_members)]
        found = next((m for m in ms if m["name"] == cluster.pd_leader), None)
        if found is None:
            return _json("[PD:member:ErrLeaderNil]leader is nil", status=500)
        return _json(found)

    @routes.get("/pd/api/v1/cluster")
    async def cluster_info(request: web.Request) -> web.Response:
        return _json({"id": cluster.cluster_id, "max_peer_count": 3})

    @routes.get("/pd/api/v1/cluster/status")
    async def cluster_status(request: web.Request) -> web.Response:
        return _json(
            {
                "raft_bootstrap_time": format_rfc3339(cluster.started_at),
                "is_initialized": True,
                "replication_status": {"state": "UNKNOWN"},
            }
        )

    def config_payload() -> dict[str, Any]:
        return {
            "client-urls": pd_url,
            "replication": {
                "max-replicas": cluster.max_replicas,
                "location-labels": "zone,host",
                "isolation-level": "",
                "strictly-match-label": "false",
                "enable-placement-rules": "true",
            },
            "schedule": {
                "max-store-down-time": format_duration(cluster.max_store_down_time),
                "patrol-region-interval": "10ms",
                "max-snapshot-count": 64,
                "max-pending-peer-count": 64,
                "leader-schedule-limit": 4,
                "region-schedule-limit": 2048,
                "replica-schedule-limit": 64,
                "split-merge-interval": "1h0m0s",
            },
            "pd-server": {"use-region-storage": "true", "metric-storage": ""},
        }

    @routes.get("/pd/api/v1/config")
    async def config(request: web.Request) -> web.Response:
        return _json(config_payload())

    @routes.post("/pd/api/v1/config")
    async def set_config(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _json("[PD:json:ErrJSONUnmarshal]invalid character in JSON body", status=400)
        if not isinstance(body, dict) or not body:
            return _json("[PD:apiutil:ErrBadRequest]expected a JSON object of config items", status=400)
        for key, value in body.items():
            if key in ("max-replicas", "replication.max-replicas"):
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    return _json(
                        f"[PD:apiutil:ErrBadRequest]max-replicas must be a positive integer: {value}",
                        status=400,
                    )
                cluster.set_max_replicas(value)
                continue
            if key not in ("max-store-down-time", "schedule.max-store-down-time"):
                return _json(f"config item {key} not found", status=400)
            try:
                cluster.max_store_down_time = parse_duration(str(value))
            except ValueError:
                return _json(f'[PD:typeutil:ErrBadDuration]time: invalid duration "{value}"', status=400)
        return _json("The config is updated.")

    @routes.get("/pd/api/v1/regions")
    async def regions(request: web.Request) -> web.Response:
        cluster.tick()
        down = {r.id: ids for r, ids in cluster.regions_with("down-peer")}
        pending = {r.id: ids for r, ids in cluster.regions_with("pending-peer")}
        return _json(
            {
                "count": len(cluster.regions),
                "regions": [region_json(cluster, r, down, pending) for r in cluster.regions],
            }
        )

    @routes.get("/pd/api/v1/regions/key")
    async def scan_regions(request: web.Request) -> web.Response:
        # PD's ScanRegions: the regions from the one holding `key` on, at most `limit` (16).
        try:
            limit = int(request.query.get("limit", "16"))
        except ValueError:
            return _json("limit is invalid", status=400)
        start = request.query.get("key", "").encode("latin-1")
        end = request.query.get("end_key", "").encode("latin-1")
        cluster.tick()
        index = cluster.region_index_for_key(start) or 0
        hits = [r for r in cluster.regions[index:] if not end or r.start < end][: max(limit, 0) or None]
        down = {r.id: ids for r, ids in cluster.regions_with("down-peer")}
        pending = {r.id: ids for r, ids in cluster.regions_with("pending-peer")}
        return _json({"count": len(hits), "regions": [region_json(cluster, r, down, pending) for r in hits]})

    @routes.get("/pd/api/v1/regions/store/{id}")
    async def store_regions(request: web.Request) -> web.Response:
        # PD's GetStoreRegions: every region with a peer on the store (none for an unknown id).
        try:
            store_id = int(request.match_info["id"])
        except ValueError:
            return _json(
                f'strconv.ParseUint: parsing "{request.match_info["id"]}": invalid syntax', status=400
            )
        cluster.tick()
        down = {r.id: ids for r, ids in cluster.regions_with("down-peer")}
        pending = {r.id: ids for r, ids in cluster.regions_with("pending-peer")}
        hits = [r for r in cluster.regions if store_id in r.peer_store_ids]
        return _json({"count": len(hits), "regions": [region_json(cluster, r, down, pending) for r in hits]})

    @routes.get("/pd/api/v1/regions/check/{check}")
    async def region_check(request: web.Request) -> web.Response:
        check = request.match_info["check"]
        if check not in REGION_CHECKS:
            return _json("[PD:apiutil:ErrBadRequest]invalid state", status=400)
        cluster.tick()
        hits = cluster.regions_with(check)
        down = {r.id: ids for r, ids in cluster.regions_with("down-peer")}
        pending = {r.id: ids for r, ids in cluster.regions_with("pending-peer")}
        return _json(
            {"count": len(hits), "regions": [region_json(cluster, r, down, pending) for r, _ in hits]}
        )

    @routes.get("/metrics")
    async def metrics(request: web.Request) -> web.Response:
        cluster.tick()
        states = [cluster.state_name(s) for s in cluster.stores.values()]
        lines = ["# HELP pd_cluster_status Status of the cluster.", "# TYPE pd_cluster_status gauge"]
        for name, value in (
            ("store_up_count", states.count("Up")),
            ("store_disconnected_count", states.count("Disconnected")),
            ("store_down_count", states.count("Down")),
            ("store_offline_count", 0),
            ("store_tombstone_count", 0),
            ("leader_count", len(cluster.regions)),
            ("region_count", len(cluster.regions)),
        ):
            lines.append(f'pd_cluster_status{{type="{name}"}} {value}')
        lines += ["# HELP pd_regions_status Status of the regions.", "# TYPE pd_regions_status gauge"]
        for check in ("miss-peer", "extra-peer", "down-peer", "pending-peer", "offline-peer", "learner-peer"):
            lines.append(
                f'pd_regions_status{{type="{check}-region-count"}} {len(cluster.regions_with(check))}'
            )
        # PD's embedded etcd: this member leads (the emulator is one PD); alert rules use it to
        # count the cluster gauges on the leader only.
        lines += [
            "# HELP etcd_server_is_leader Whether or not this member is a leader.",
            "# TYPE etcd_server_is_leader gauge",
        ]
        lines.append("etcd_server_is_leader 1")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app.add_routes(routes)
    return app
