"""Invariants: pure functions from a snapshot (and what the monitor remembers) to signals.

Signals fire in roughly this order after a TiKV pod is killed: store_unreachable (scrape or
probe fails at once), store_restarted (the replacement has a new start time), then, only if the
pod stays away past PD's thresholds, store_disconnected (20 s) and store_down
(max-store-down-time); region_unhealthy once peers fall behind. A StatefulSet usually brings the
pod back before 20 s, so PD's state alone would often see nothing: the invariants combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.monitor.snapshot import Snapshot
from controller.pd import StoreInfo, pod_of_address
from controller.tickets.models import Observation, Severity

SEVERITY = {
    "store_down": Severity.CRITICAL,
    "pd_unhealthy": Severity.CRITICAL,
    # A new PD leader: scheduling and timestamps paused for the election.
    "pd_leader_changed": Severity.HIGH,
    "store_disconnected": Severity.HIGH,
    "store_unreachable": Severity.HIGH,
    "region_unhealthy": Severity.MEDIUM,
    "store_restarted": Severity.MEDIUM,
}
INVARIANTS = tuple(SEVERITY)


@dataclass
class Signal:
    invariant: str
    subject: str
    observation: Observation
    store_id: int | None = None
    store_address: str | None = None
    pod: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.invariant]


@dataclass
class Memory:
    """What the monitor carries between cycles: the start times it has seen per store."""

    start_timestamps: dict[int, int] = field(default_factory=dict)
    process_starts: dict[str, float] = field(default_factory=dict)
    scraped: set[str] = field(default_factory=set)  # status addresses Prometheus has had a target for
    pd_leader: str | None = None  # the last PD leader seen


def store_subject(store_id: int) -> str:
    return f"store/{store_id}"


def _signal(invariant: str, store: StoreInfo, source: str, at: float, detail: str, **data: Any) -> Signal:
    return Signal(
        invariant=invariant,
        subject=store_subject(store.id),
        observation=Observation(
            signal=invariant,
            source=source,
            at=at,
            detail=detail,
            data={"store_id": store.id, "address": store.store.address, **data},
        ),
        store_id=store.id,
        store_address=store.store.address,
        pod=pod_of_address(store.store.address)[0],
    )


def evaluate(snap: Snapshot, memory: Memory) -> list[Signal]:
    signals: list[Signal] = []
    at = snap.taken_at
    for store in snap.stores:
        signals += _store_signals(snap, memory, store, at)
    signals += _region_signals(snap, at)
    signals += _pd_signals(snap, at)
    signals += _pd_leader_signals(snap, memory, at)
    return signals


def _store_signals(snap: Snapshot, memory: Memory, store: StoreInfo, at: float) -> list[Signal]:
    out: list[Signal] = []
    meta = store.store
    status_address = meta.status_address

    # store_unreachable: the scrape or the direct probe fails.
    reasons: list[str] = []
    probe = snap.probes.get(status_address)
    # A failed scrape that the direct probe contradicts (the store answers now) is a scrape
    # hiccup — a slow node, a busy Prometheus — not a dead store: it needs the second signal.
    scrape_contradicted = probe is not None and probe.ok
    scrape_failed = None
    if snap.up is not None:
        if snap.up.get(status_address) == 0.0:
            scrape_failed = f'up{{job="tikv",instance="{status_address}"}} == 0'
        elif (
            status_address not in snap.up
            and status_address in memory.scraped
            and meta.state_name != "Tombstone"
        ):
            # Service discovery dropped the target (its pod is gone): down, not "no data".
            scrape_failed = f"target {status_address} vanished from Prometheus"
        if status_address in snap.up:
            memory.scraped.add(status_address)
    if scrape_failed and not scrape_contradicted:
        reasons.append("prometheus")
        out.append(
            _signal("store_unreachable", store, "prometheus", at, scrape_failed, instance=status_address)
        )
    if probe is not None and not probe.ok:
        reasons.append("probe")
        out.append(
            _signal(
                "store_unreachable",
                store,
                "probe",
                at,
                f"status port {status_address} probe failed: {probe.detail}",
                latency_ms=round(probe.latency_ms, 1),
            )
        )

    # store_restarted: a new start time, from PD or from the process itself.
    if snap.stores_fresh:
        previous = memory.start_timestamps.get(store.id)
        if previous is not None and meta.start_timestamp != previous:
            out.append(
                _signal(
                    "store_restarted",
                    store,
                    "pd",
                    at,
                    f"PD start_timestamp changed {previous} -> {meta.start_timestamp}",
                    previous=previous,
                    current=meta.start_timestamp,
                )
            )
        memory.start_timestamps[store.id] = meta.start_timestamp
    if snap.process_start is not None and status_address in snap.process_start:
        current = snap.process_start[status_address]
        previous_start = memory.process_starts.get(status_address)
        if previous_start is not None and abs(current - previous_start) > 0.5:
            out.append(
                _signal(
                    "store_restarted",
                    store,
                    "prometheus",
                    at,
                    f"process_start_time_seconds changed {previous_start:.0f} -> {current:.0f}",
                    previous=previous_start,
                    current=current,
                )
            )
        memory.process_starts[status_address] = current

    # PD's own verdict, computed from heartbeats.
    if snap.stores_fresh and meta.state_name in ("Disconnected", "Down"):
        invariant = "store_down" if meta.state_name == "Down" else "store_disconnected"
        age = at - meta.last_heartbeat_seconds
        out.append(
            _signal(
                invariant,
                store,
                "pd",
                at,
                f"PD state_name {meta.state_name}, last heartbeat {age:.1f}s ago",
                state_name=meta.state_name,
                heartbeat_age_s=round(age, 1),
            )
        )
    return out


def _region_signals(snap: Snapshot, at: float) -> list[Signal]:
    out: list[Signal] = []
    by_id = {s.id: s for s in snap.stores}
    for kind in ("down-peer", "pending-peer"):
        check = snap.region_checks.get(kind)
        if check is None or check.count == 0:
            continue
        for store_id in sorted(check.affected_store_ids(kind)):
            regions = [
                r.id
                for r in check.regions
                if store_id in {p.peer.store_id for p in r.down_peers} | {p.store_id for p in r.pending_peers}
            ]
            detail = f"{len(regions)} region(s) with a {kind} on store {store_id}"
            store = by_id.get(store_id)
            if store is not None:
                out.append(
                    _signal(
                        "region_unhealthy",
                        store,
                        "pd",
                        at,
                        detail,
                        check=kind,
                        regions=regions[:10],
                        region_count=len(regions),
                    )
                )
    miss = snap.region_checks.get("miss-peer")
    if miss is not None and miss.count:
        out.append(
            Signal(
                "region_unhealthy",
                "regions",
                Observation(
                    signal="region_unhealthy",
                    source="pd",
                    at=at,
                    detail=f"{miss.count} region(s) miss a peer",
                    data={"check": "miss-peer", "region_count": miss.count},
                ),
            )
        )
    return out


def _pd_signals(snap: Snapshot, at: float) -> list[Signal]:
    if snap.pd_error is not None:
        return [
            Signal(
                "pd_unhealthy",
                "pd",
                Observation(signal="pd_unhealthy", source="pd", at=at, detail=snap.pd_error[:300], data={}),
            )
        ]
    unhealthy = [m.name for m in (snap.pd_health or []) if not m.health]
    if unhealthy:
        return [
            Signal(
                "pd_unhealthy",
                "pd",
                Observation(
                    signal="pd_unhealthy",
                    source="pd",
                    at=at,
                    detail=f"unhealthy PD members: {', '.join(unhealthy)}",
                    data={"members": unhealthy},
                ),
            )
        ]
    return []


def _pd_leader_signals(snap: Snapshot, memory: Memory, at: float) -> list[Signal]:
    """PD elected a different leader since the last cycle that saw one (the old one died, was
    partitioned, or handed over)."""
    if snap.pd_error is not None or snap.pd_leader is None:
        return []
    previous, memory.pd_leader = memory.pd_leader, snap.pd_leader
    if previous is None or previous == snap.pd_leader:
        return []
    return [
        Signal(
            "pd_leader_changed",
            "pd",
            Observation(
                signal="pd_leader_changed",
                source="pd",
                at=at,
                detail=f"PD leader changed {previous} -> {snap.pd_leader}",
                data={"previous": previous, "current": snap.pd_leader},
            ),
        )
    ]
