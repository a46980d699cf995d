"""PD's JSON as pydantic models, parsing PD's own formats into plain numbers.

Sizes ("311.7GiB") become bytes, Go durations ("36m20.48s") seconds, RFC 3339 timestamps and
nanosecond heartbeats unix seconds. ``state`` is omitted by PD when a store is Up.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from controller.pd.formats import parse_duration, parse_rfc3339, parse_size

STORE_STATE_NAMES = {0: "Up", 1: "Offline", 2: "Tombstone"}


def _size(value: Any) -> int:
    return value if isinstance(value, int) else parse_size(str(value))


def _duration(value: Any) -> float | None:
    return None if value in (None, "") else parse_duration(str(value))


def _timestamp(value: Any) -> float | None:
    return None if value in (None, "") else parse_rfc3339(str(value))


Size = Annotated[int, BeforeValidator(_size)]
Duration = Annotated[float | None, BeforeValidator(_duration)]
Timestamp = Annotated[float | None, BeforeValidator(_timestamp)]


class _PDModel(BaseModel):
    # PD adds fields between versions; unknown ones are kept, never an error.
    model_config = ConfigDict(extra="allow", frozen=True)


class StoreLabel(_PDModel):
    key: str
    value: str


class StoreMeta(_PDModel):
    id: int
    address: str
    state: int = 0
    state_name: str = "Up"
    labels: list[StoreLabel] = Field(default_factory=list)
    version: str = ""
    status_address: str = ""
    start_timestamp: int = 0
    last_heartbeat: int = 0  # unix nanoseconds
    node_state: int = 0

    @property
    def last_heartbeat_seconds(self) -> float:
        return self.last_heartbeat / 1e9


class StoreStatus(_PDModel):
    capacity: Size = 0
    available: Size = 0
    used_size: Size = 0
    leader_count: int = 0
    region_count: int = 0
    start_ts: Timestamp = None
    last_heartbeat_ts: Timestamp = None
    uptime: Duration = None


class StoreInfo(_PDModel):
    store: StoreMeta
    status: StoreStatus = Field(default_factory=StoreStatus)

    @property
    def id(self) -> int:
        return self.store.id

    @property
    def pod(self) -> str:
        return pod_of_address(self.store.address)[0]


class StoresResponse(_PDModel):
    count: int
    stores: list[StoreInfo] = Field(default_factory=list)


class HealthMember(_PDModel):
    name: str
    member_id: int
    client_urls: list[str] = Field(default_factory=list)
    health: bool


class Peer(_PDModel):
    id: int
    store_id: int
    role_name: str = "Voter"


class DownPeer(_PDModel):
    down_seconds: int = 0
    peer: Peer


class RegionInfo(_PDModel):
    id: int
    start_key: str = ""
    end_key: str = ""
    peers: list[Peer] = Field(default_factory=list)
    leader: Peer | None = None
    down_peers: list[DownPeer] = Field(default_factory=list)
    pending_peers: list[Peer] = Field(default_factory=list)


class RegionCheck(_PDModel):
    count: int
    regions: list[RegionInfo] = Field(default_factory=list)

    def affected_store_ids(self, kind: str) -> set[int]:
        """Stores whose peers make the regions fail this check."""
        ids: set[int] = set()
        for region in self.regions:
            if kind == "down-peer":
                ids |= {d.peer.store_id for d in region.down_peers}
            elif kind == "pending-peer":
                ids |= {p.store_id for p in region.pending_peers}
        return ids


class PDConfig(_PDModel):
    schedule: dict[str, Any] = Field(default_factory=dict)
    replication: dict[str, Any] = Field(default_factory=dict)

    @property
    def max_store_down_time_seconds(self) -> float:
        return parse_duration(str(self.schedule.get("max-store-down-time", "30m0s")))

    @property
    def max_replicas(self) -> int:
        return int(self.replication.get("max-replicas", 3))


def pod_of_address(address: str) -> tuple[str, str | None]:
    """``tikv-1.tikv-peer.tikv.svc:20160`` -> ("tikv-1", "tikv"): the pod and its namespace.

    Works for the StatefulSet DNS names TiKV advertises on Kubernetes; for a bare IP address
    the "pod" is the address itself and the namespace unknown.
    """
    host = address.rsplit(":", 1)[0]
    parts = host.split(".")
    if len(parts) >= 3 and not host.replace(".", "").isdigit():
        return parts[0], parts[2]
    return host, None
