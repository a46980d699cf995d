"""The emulated TiKV cluster as plain, clock-driven logic (no I/O), so it can be tested alone.

Timings are TiKV's and PD's, multiplied by one ``time_scale`` factor: a heartbeat every 10 s,
Disconnected after 20 s without one, Down after ``max-store-down-time`` (30 m), a Raft
election after 10-20 s. With ``time_scale=0.1`` everything happens ten times faster with the
same ratios.
"""

from __future__ import annotations

import bisect
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.emulator.network import Network

HEARTBEAT_INTERVAL = 10.0
DISCONNECTED_AFTER = 20.0
DEFAULT_MAX_STORE_DOWN_TIME = 30 * 60.0
ELECTION_TIMEOUT = (10.0, 20.0)
MAX_PEER_DOWN_DURATION = 10 * 60.0
# PD's replica checker, once a store is Down: a new peer on another store catches up from a
# snapshot (a pending peer meanwhile), then the Down store's peer is removed.
REPLICA_REPAIR_SECONDS = 5.0
# PD's balance-leader scheduler: leaders drift back to an even spread, here one transfer a second.
BALANCE_LEADER_INTERVAL = 1.0
# PD's leader holds an etcd lease (PD's `lease`, 3 s): when the leader dies, the other members
# campaign once it has expired.
PD_LEADER_LEASE = 3.0
# PD's schedulers back off while they have nothing to do (x1.3 a round, up to MaxScheduleInterval,
# 5 s): the balance-leader scheduler, idle while the cluster was balanced, runs its first round
# after an election up to 5 s later. The emulator takes the whole interval, so the moment the
# victim leads nothing lasts long enough for a controller looking twice a second to see it.
BALANCE_IDLE_INTERVAL = 5.0
# Buckets of tikv_grpc_msg_duration_seconds, in seconds.
GRPC_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
TIKV_VERSION = "8.5.0"
TIKV_GIT_HASH = "c9d2d9d2fe4d2c2c8c8b2bb7c4b1d1f0b5b6e0a1"
PD_CLUSTER_ID = 7_329_148_523_190_433_001

_ORDINAL_RE = re.compile(r"-(\d+)$")


@dataclass
class Region:
    id: int
    start_key: str
    end_key: str
    peer_store_ids: list[int]
    leader_store_id: int
    approximate_size_mib: int = 96
    approximate_keys: int = 960_000
    conf_ver: int = 5
    version: int = 10
    # A replica being rebuilt: (the Down store it replaces, the new store, when it has caught up).
    repair: tuple[int, int, float] | None = None

    @property
    def learner_store_id(self) -> int | None:
        """A replica being rebuilt is a learner until it has caught up."""
        return self.repair[1] if self.repair is not None else None

    def peer_id(self, store_id: int) -> int:
        """The id of the region's peer on a store (region ids are 4 apart: room for 3 voters)."""
        if store_id == self.learner_store_id:
            return self.id * 100 + store_id
        return self.id + 1 + self.peer_store_ids.index(store_id)

    @property
    def start(self) -> bytes:
        return bytes.fromhex(self.start_key)

    @property
    def end(self) -> bytes:
        """b"" is the end of the key space."""
        return bytes.fromhex(self.end_key)

    def holds(self, key: bytes) -> bool:
        return self.start <= key and (not self.end_key or key < self.end)


@dataclass(frozen=True)
class Election:
    """The emulator's record of one store's regions electing new leaders: the truth a client's
    view of a kill is compared with."""

    store_id: int
    pod: str
    died_at: float
    elected_at: float  # from this moment the regions' new leaders answer
    regions: tuple[int, ...]  # the regions that had their leader on the store


@dataclass
class Store:
    id: int
    pod: str
    address: str
    status_address: str
    labels: dict[str, str]
    start_timestamp: float
    last_heartbeat: float
    alive: bool = True
    died_at: float | None = None
    capacity: int = 311_700 * (1 << 20)
    used: int = 1_200 * (1 << 20)
    # Raft messages to each peer store that could not be sent (dead, or cut off by the network):
    # TiKV's tikv_server_report_failure_msg_total{type="unreachable",store_id=<peer>}.
    unreachable_by_peer: dict[int, float] = field(default_factory=dict)
    grpc_requests: int = 0
    grpc_failures: int = 0  # sends that failed: none in the emulator (see tikv_status)
    grpc_seconds_sum: float = 0.0
    grpc_buckets: list[int] = field(default_factory=lambda: [0] * len(GRPC_BUCKETS))  # cumulative

    def record_requests(self, count: int, seconds: float) -> None:
        """Requests the store handled (its gRPC service), as TiKV's histogram counts them."""
        self.grpc_requests += count
        self.grpc_seconds_sum += count * seconds
        for i, le in enumerate(GRPC_BUCKETS):
            if seconds <= le:
                self.grpc_buckets[i] += count


@dataclass
class EmulatedCluster:
    """One TiKV cluster behind one PD."""

    namespace: str = "tikv"
    headless_service: str = "tikv-peer"
    time_scale: float = 1.0
    region_count: int = 24
    status_ip_prefix: str = "127.0.10"
    status_port: int = 20180
    clock: Callable[[], float] = time.time
    seed: int = 7
    stores: dict[str, Store] = field(default_factory=dict)  # by pod name
    instance_ids: dict[str, int] = field(default_factory=dict)  # store ids of pods without an ordinal
    regions: list[Region] = field(default_factory=list)
    max_store_down_time: float = DEFAULT_MAX_STORE_DOWN_TIME
    max_replicas: int = 3
    # PD's members (etcd membership outlives a pod: a deleted member's pod comes back as it),
    # the ones whose pod is not serving, and the leader (None while the others elect one).
    pd_members: list[str] = field(default_factory=lambda: ["pd-0"])
    pd_down: set[str] = field(default_factory=set)
    pd_leader: str | None = "pd-0"
    _pd_election_at: float | None = None
    _pd_pods_seen: bool = False
    _pd_electorate: set[str] = field(default_factory=set)
    started_at: float = 0.0
    _rng: random.Random = field(init=False)
    _pending_elections: dict[int, float] = field(default_factory=dict)  # store id -> election done at
    elections: list[Election] = field(default_factory=list)
    _died_at: dict[int, float] = field(default_factory=dict)  # store id -> the death its election follows
    _starts: list[bytes] = field(default_factory=list)
    _by_id: dict[int, int] = field(default_factory=dict)
    _indexed: list[Region] | None = None
    _last_tick: float = 0.0
    _last_balance: float = 0.0
    # The network between the pods (NetworkPolicies), and for each store cut off from a quorum
    # of a region it leads: since when, and when its followers' election is done.
    network: Network = field(default_factory=Network)
    _cut_since: dict[int, float] = field(default_factory=dict)
    _cut_elections: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.started_at = self.clock()
        self.network.namespace = self.namespace

    @property
    def cluster_id(self) -> int:
        """PD's cluster id: one per cluster (here per namespace), as a real PD draws its own."""
        return PD_CLUSTER_ID + zlib.crc32(self.namespace.encode())

    # -- scaled durations ---------------------------------------------------------------------
    def scaled(self, nominal_seconds: float) -> float:
        return nominal_seconds * self.time_scale

    # -- pods -> stores -----------------------------------------------------------------------
    def store_id_for(self, pod: str) -> int:
        """Stable per pod name, as a store keeps its id with its PVC: a StatefulSet's tikv-0 -> 1,
        tikv-1 -> 2; a pod named after its instance (tidb-operator v2: tikv-tikv-9f2c1a) gets the
        next free id from 101, kept for the name. The id is also the last octet of the store's
        loopback address, so it stays below 255."""
        match = _ORDINAL_RE.search(pod)
        if match and int(match.group(1)) < 100:
            return int(match.group(1)) + 1
        if pod not in self.instance_ids:
            self.instance_ids[pod] = 101 + len(self.instance_ids)
        return self.instance_ids[pod]

    def pod_ready(self, pod: str, node: str | None = None) -> Store:
        """A Running+Ready TiKV pod: the store (re)starts and heartbeats at once."""
        now = self.clock()
        store = self.stores.get(pod)
        if store is None:
            sid = self.store_id_for(pod)
            store = Store(
                id=sid,
                pod=pod,
                address=f"{pod}.{self.headless_service}.{self.namespace}.svc:20160",
                # The status address is the store's own loopback "pod IP", so that Prometheus
                # (and a direct probe) reach this store and nothing else.
                status_address=f"{self.status_ip_prefix}.{sid}:{self.status_port}",
                labels={"host": node or pod, "zone": f"zone-{(sid - 1) % 3}"},
                start_timestamp=now,
                last_heartbeat=now,
            )
            self.stores[pod] = store
            self._rebalance_regions()
            return store
        if not store.alive:
            # Back, but not leader again: its regions still elect a new leader when their
            # election timeout runs out (the restarted peer lost its term), as in Raft.
            store.alive = True
            store.died_at = None
            store.start_timestamp = now
            store.last_heartbeat = now
        if node:
            store.labels["host"] = node
        return store

    def pod_gone(self, pod: str) -> Store | None:
        """The pod was deleted or stopped being Ready: the store stops heartbeating now."""
        store = self.stores.get(pod)
        if store is None or not store.alive:
            return store
        now = self.clock()
        store.alive = False
        store.died_at = now
        lo, hi = ELECTION_TIMEOUT
        if store.id not in self._pending_elections:
            self._died_at[store.id] = now
            self._pending_elections[store.id] = now + self.scaled(self._rng.uniform(lo, hi))
        return store

    # -- PD members -----------------------------------------------------------------------------
    def pd_member_up(self, name: str) -> None:
        """A serving PD pod: a member (new, or rejoining as a follower). The first one seen
        replaces the stand-in member a cluster without PD pods has."""
        if not self._pd_pods_seen:
            self._pd_pods_seen = True
            self.pd_members, self.pd_leader, self._pd_election_at = [], None, self.clock()
        if name not in self.pd_members:
            self.pd_members = sorted([*self.pd_members, name])
        self.pd_down.discard(name)

    def pd_member_gone(self, name: str) -> None:
        """A PD pod deleted or not serving: the member is unhealthy; if it led, the others elect
        a new leader once its lease has run out."""
        if name not in self.pd_members or name in self.pd_down:
            return
        self.pd_down.add(name)
        if self.pd_leader == name:
            self.pd_leader = None
            self._pd_election_at = self.clock() + self.scaled(PD_LEADER_LEASE)
            # The members that were running campaign once the lease is out; a member (re)started
            # meanwhile is still loading and joining etcd, and loses to them.
            self._pd_electorate = set(self.pd_members) - self.pd_down

    def _elect_pd_leader(self, now: float) -> None:
        if self.pd_leader is not None or self._pd_election_at is None or now < self._pd_election_at:
            return
        alive = sorted(set(self.pd_members) - self.pd_down)
        if len(alive) * 2 > len(self.pd_members):  # etcd needs a majority of its members
            campaigning = [m for m in alive if m in self._pd_electorate] or alive
            self.pd_leader = campaigning[0]
            self._pd_election_at = None
            self._pd_electorate = set()

    def _index(self) -> None:
        # Key ranges and ids change only when the regions are laid out again (a new list).
        if self._indexed is not self.regions:
            self._starts = [r.start for r in self.regions]
            self._by_id = {r.id: i for i, r in enumerate(self.regions)}
            self._indexed = self.regions

    def region_index_for_key(self, key: bytes) -> int | None:
        """The position of the region whose [start, end) holds the key (regions are in key order)."""
        self._index()
        index = bisect.bisect_right(self._starts, key) - 1
        return index if index >= 0 and self.regions[index].holds(key) else None

    def region_for_key(self, key: bytes) -> Region | None:
        index = self.region_index_for_key(key)
        return None if index is None else self.regions[index]

    def serving_leader(self, region: Region) -> int | None:
        """The store that answers for the region now: its leader, unless that store is dead, or
        back but its regions still electing (the restarted peer lost its term): then none."""
        store = self.store_by_id(region.leader_store_id)
        if store is None or not store.alive or store.id in self._pending_elections:
            return None
        return store.id

    def region_by_id(self, region_id: int) -> Region | None:
        self._index()
        index = self._by_id.get(region_id)
        return None if index is None else self.regions[index]

    def store_by_id(self, store_id: int) -> Store | None:
        return next((s for s in self.stores.values() if s.id == store_id), None)

    # -- time passes ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance heartbeats, elections and unreachable counters to the current time."""
        now = self.clock()
        if self._last_tick == 0.0:
            self._last_tick = now
        interval = self.scaled(HEARTBEAT_INTERVAL)
        alive = [s for s in self.stores.values() if s.alive]
        dead = [s for s in self.stores.values() if not s.alive]
        per_peer = (now - self._last_tick) / self.scaled(1.0)
        for store in alive:
            # Heartbeats land on a fixed cadence from the store's start, not on every tick; none
            # arrive while the network keeps the store from PD's leader.
            if self.network.reaches_pd(store.pod, self.pd_leader):
                beats = int((now - store.start_timestamp) // interval)
                store.last_heartbeat = max(store.last_heartbeat, store.start_timestamp + beats * interval)
            # Stores keep trying to reach peers that are dead or cut off and count the failures:
            # about one report per such peer per (scaled) second.
            unreachable = [*dead, *(o for o in alive if o is not store and not self._connected(store, o))]
            for peer in unreachable:
                store.unreachable_by_peer[peer.id] = store.unreachable_by_peer.get(peer.id, 0.0) + per_peer
        self._cut_off_leaders(now, alive)
        elected = False
        for store_id, done_at in list(self._pending_elections.items()):
            if now >= done_at:
                elected_store = self.store_by_id(store_id)
                led = tuple(r.id for r in self.regions if r.leader_store_id == store_id)
                self._move_leaders_off(store_id)
                del self._pending_elections[store_id]
                if elected_store is not None:
                    died_at = self._died_at.get(store_id, now)
                    self.elections.append(Election(store_id, elected_store.pod, died_at, now, led))
                elected = True
        self._repair_replicas(now)
        self._elect_pd_leader(now)
        if elected:
            # PD's balance-leader scheduler acts on its next round, after its idle back-off.
            step = self.scaled(BALANCE_LEADER_INTERVAL)
            self._last_balance = now + self.scaled(BALANCE_IDLE_INTERVAL) - step
        self._balance_leaders(now)
        self._last_tick = now

    # -- the network -------------------------------------------------------------------------------
    def _connected(self, a: Store, b: Store) -> bool:
        return self.network.connected(a.pod, b.pod)

    def _quorum_without(self, region: Region, store: Store, alive: dict[int, Store]) -> bool:
        """Can ``store`` gather a majority of the region's voters (itself and the peers it can
        exchange Raft messages with)?"""
        reach = 1 + sum(
            1
            for sid in region.peer_store_ids
            if sid != store.id and sid in alive and self._connected(store, alive[sid])
        )
        return reach * 2 > len(region.peer_store_ids)

    def cut_from_quorum(self, region: Region, store: Store) -> bool:
        """The network keeps the store from a majority of the region's peers: it can neither
        serve the region (its leader lease runs out, reads and writes find no quorum) nor learn
        who leads it now. Requests to it for the region go unanswered."""
        if not self.network.enforced or not store.alive:
            return False
        alive = {s.id: s for s in self.stores.values() if s.alive}
        return not self._quorum_without(region, store, alive)

    def _cut_off_leaders(self, now: float, alive_stores: list[Store]) -> None:
        """A leader cut off from a quorum of its region: the followers elect one of themselves
        after an election timeout (the old leader's lease has run out by then), as after a
        death; a cut healed before that changes nothing."""
        if not self.network.enforced and not self._cut_elections:
            return
        alive = {s.id: s for s in alive_stores}
        for store in alive_stores:
            stranded = [
                r
                for r in self.regions
                if r.leader_store_id == store.id and not self._quorum_without(r, store, alive)
            ]
            if not stranded:
                self._cut_since.pop(store.id, None)
                self._cut_elections.pop(store.id, None)
                continue
            if store.id not in self._cut_elections:
                lo, hi = ELECTION_TIMEOUT
                self._cut_since[store.id] = now
                self._cut_elections[store.id] = now + self.scaled(self._rng.uniform(lo, hi))
                continue
            if now < self._cut_elections[store.id]:
                continue
            moved = []
            for region in stranded:
                voters = [
                    alive[sid]
                    for sid in region.peer_store_ids
                    if sid != store.id and sid in alive and self._quorum_without(region, alive[sid], alive)
                ]
                if voters:
                    region.leader_store_id = min(voters, key=lambda s: (self.leader_count(s), s.id)).id
                    moved.append(region.id)
            self.elections.append(Election(store.id, store.pod, self._cut_since[store.id], now, tuple(moved)))
            del self._cut_elections[store.id]
            # PD's balance-leader scheduler acts on its next round, after its idle back-off.
            step = self.scaled(BALANCE_LEADER_INTERVAL)
            self._last_balance = now + self.scaled(BALANCE_IDLE_INTERVAL) - step

    def _balance_leaders(self, now: float) -> None:
        step = self.scaled(BALANCE_LEADER_INTERVAL)
        if self._last_balance == 0.0 or self._pending_elections:
            self._last_balance = now  # PD does not balance while leaders are being elected
            return
        if now < self._last_balance + step:
            return
        transfers = min(10, int((now - self._last_balance) // step))
        self._last_balance += transfers * step
        for _ in range(transfers):
            if not self._transfer_one_leader():
                self._last_balance = now
                return

    def _transfer_one_leader(self) -> bool:
        """One balance-leader operator: from the store leading most to the one leading fewest,
        for a region with a peer on both. False when the spread is already within one."""
        alive = sorted((s for s in self.stores.values() if s.alive), key=lambda s: s.id)
        if len(alive) < 2:
            return False
        counts = {s.id: self.leader_count(s) for s in alive}
        source = max(alive, key=lambda s: counts[s.id])
        # A leader moves by a Raft message from the old leader to the new one: not across a cut.
        targets = [s for s in alive if s is not source and self._connected(source, s)]
        if not targets:
            return False
        src, dst = source.id, min(targets, key=lambda s: counts[s.id]).id
        if counts[src] - counts[dst] <= 1:
            return False
        region = next((r for r in self.regions if r.leader_store_id == src and dst in r.peer_store_ids), None)
        if region is None:
            return False
        region.leader_store_id = dst
        return True

    def _repair_replicas(self, now: float) -> None:
        """PD's replica checker: a region with a peer on a Down store gets a new peer on a store
        it has none on (the one with fewest regions), which becomes a voter once it has caught up;
        the Down store's peer is then removed. With three stores there is nowhere to put it."""
        down = {s.id for s in self.stores.values() if not s.alive and self.state_name(s) == "Down"}
        holding: Counter[int] | None = None  # regions per store, counted once if a repair starts
        for region in self.regions:
            if region.repair is not None:
                old, new, done_at = region.repair
                if now >= done_at:
                    region.peer_store_ids = [new if sid == old else sid for sid in region.peer_store_ids]
                    region.conf_ver += 2  # add the learner, promote it and remove the old peer
                    region.repair = None
                continue
            lost = next((sid for sid in region.peer_store_ids if sid in down), None)
            if lost is None:
                continue
            spare = [s for s in self.stores.values() if s.alive and s.id not in region.peer_store_ids]
            if spare:
                if holding is None:
                    holding = Counter(sid for r in self.regions for sid in r.peer_store_ids)
                target = min(spare, key=lambda s: (holding[s.id], s.id))
                holding[target.id] += 1
                region.repair = (lost, target.id, now + self.scaled(REPLICA_REPAIR_SECONDS))

    def leaderless_regions(self) -> list[Region]:
        """Regions no client can use now: their leader's store died (or restarted) and the
        election that moves the leader has not finished."""
        waiting = self.dead_store_ids() | set(self._pending_elections)
        return [r for r in self.regions if r.leader_store_id in waiting]

    # -- derived state (computed per request, as PD does) ------------------------------------------
    def state_name(self, store: Store) -> str:
        age = self.clock() - store.last_heartbeat
        if age > self.scaled(self.max_store_down_time):
            return "Down"
        if age > self.scaled(DISCONNECTED_AFTER):
            return "Disconnected"
        return "Up"

    def leader_count(self, store: Store) -> int:
        return sum(1 for r in self.regions if r.leader_store_id == store.id)

    def region_count_of(self, store: Store) -> int:
        return sum(1 for r in self.regions if store.id in r.peer_store_ids)

    def dead_store_ids(self) -> set[int]:
        return {s.id for s in self.stores.values() if not s.alive}

    def regions_with(self, check: str) -> list[tuple[Region, list[int]]]:
        """PD's region checks. Returns (region, store ids of the affected peers).

        pending-peer: a peer on a stopped store falls behind the log once a leader is elected;
        down-peer: its leader has not heard from it for max-peer-down-duration;
        miss-peer: its store is Down, so PD counts the replica as missing;
        offline-peer / extra-peer / learner-peer / empty-region: never in this emulator.
        """
        now = self.clock()
        # Which stores' peers the check counts: the same for every region they are in. PD keeps
        # these lists as it goes, so asking is cheap on a healthy cluster of any size.
        counted = {
            store.id
            for store in self.stores.values()
            if not store.alive
            and store.died_at is not None
            and (
                (check == "pending-peer" and store.id not in self._pending_elections)
                or (check == "down-peer" and now - store.died_at > self.scaled(MAX_PEER_DOWN_DURATION))
                or (check == "miss-peer" and self.state_name(store) == "Down")
            )
        }
        if not counted and (check != "pending-peer" or not any(r.repair for r in self.regions)):
            return []
        affected: list[tuple[Region, list[int]]] = []
        for region in self.regions:
            hit = [sid for sid in region.peer_store_ids if sid in counted]
            if check == "pending-peer" and region.repair is not None:
                hit.append(region.repair[1])  # the new replica, still catching up
            if hit:
                affected.append((region, hit))
        return affected

    # -- regions -----------------------------------------------------------------------------
    def _rebalance_regions(self) -> None:
        """Lay out regions with max-replicas replicas over the stores, leaders spread evenly."""
        ids = sorted(s.id for s in self.stores.values())
        if not ids:
            return
        replicas = min(self.max_replicas, len(ids))
        self.regions = []
        step = 1 << 16
        for i in range(self.region_count):
            peers = [ids[(i + k) % len(ids)] for k in range(replicas)]
            self.regions.append(
                Region(
                    id=1000 + i * 4,
                    start_key="" if i == 0 else f"7480000000000000FF{(i * step):08X}",
                    end_key="" if i == self.region_count - 1 else f"7480000000000000FF{((i + 1) * step):08X}",
                    peer_store_ids=peers,
                    leader_store_id=peers[0],
                )
            )

    def set_max_replicas(self, replicas: int) -> None:
        """PD's replication.max-replicas changed: the replica checker adds (or removes) peers
        until every region has that many. The emulator lays the regions out again at once."""
        self.max_replicas = replicas
        self._rebalance_regions()

    def _move_leaders_off(self, store_id: int) -> None:
        # Counted once and kept up to date: 10^5 regions must not cost 10^10 steps.
        dead = self.dead_store_ids()
        leading = Counter(r.leader_store_id for r in self.regions)
        for region in self.regions:
            if region.leader_store_id != store_id:
                continue
            # The followers elect one of themselves (the old leader, even if back, lost its term).
            survivors = [sid for sid in region.peer_store_ids if sid != store_id and sid not in dead]
            if survivors:
                # The follower with the fewest leaders wins, as PD's balance would settle it.
                winner = min(survivors, key=lambda sid: leading[sid])
                leading[region.leader_store_id] -= 1
                leading[winner] += 1
                region.leader_store_id = winner
