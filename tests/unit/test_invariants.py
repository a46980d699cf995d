"""Invariants as pure functions of a snapshot."""

from __future__ import annotations

from controller.monitor.invariants import Memory, evaluate
from controller.monitor.snapshot import ProbeResult, Snapshot
from controller.pd.models import RegionCheck, StoreInfo


def store(sid: int, *, state: str = "Up", start: int = 1000, heartbeat: float = 99.0) -> StoreInfo:
    return StoreInfo.model_validate(
        {
            "store": {
                "id": sid,
                "address": f"tikv-{sid - 1}.tikv-peer.tikv.svc:20160",
                "status_address": f"127.0.10.{sid}:20180",
                "state_name": state,
                "start_timestamp": start,
                "last_heartbeat": int(heartbeat * 1e9),
            },
            "status": {},
        }
    )


def snap(stores: list[StoreInfo], **kw) -> Snapshot:  # type: ignore[no-untyped-def]
    return Snapshot(taken_at=100.0, stores=stores, stores_fresh=kw.pop("fresh", True), **kw)


def names(signals) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(s.invariant, s.subject) for s in signals}


def test_healthy_cluster_fires_nothing() -> None:
    stores = [store(1), store(2), store(3)]
    up = {f"127.0.10.{i}:20180": 1.0 for i in (1, 2, 3)}
    probes = {a: ProbeResult(True, "HTTP 200", 1.0) for a in up}
    assert evaluate(snap(stores, up=up, probes=probes), Memory()) == []


def test_unreachable_from_either_source() -> None:
    stores = [store(1), store(2)]
    up = {"127.0.10.1:20180": 1.0, "127.0.10.2:20180": 0.0}
    sig = evaluate(snap(stores, up=up), Memory())
    assert names(sig) == {("store_unreachable", "store/2")}
    assert sig[0].observation.source == "prometheus" and sig[0].pod == "tikv-1"
    # Prometheus down: the probe alone still sees it.
    sig = evaluate(
        snap(stores, probes={"127.0.10.2:20180": ProbeResult(False, "ConnectError", 0.3)}), Memory()
    )
    assert names(sig) == {("store_unreachable", "store/2")} and sig[0].observation.source == "probe"


def test_restart_needs_a_baseline() -> None:
    memory = Memory()
    assert evaluate(snap([store(1, start=1000)]), memory) == []
    sig = evaluate(snap([store(1, start=1050)]), memory)
    assert names(sig) == {("store_restarted", "store/1")}
    assert evaluate(snap([store(1, start=1050)]), memory) == []  # one-shot
    # Stale store lists (PD down) never look like restarts.
    assert evaluate(snap([store(1, start=2000)], fresh=False), memory) == []


def test_pd_states_and_regions() -> None:
    stores = [store(1), store(2, state="Disconnected", heartbeat=75.0), store(3, state="Down")]
    check = RegionCheck.model_validate(
        {"count": 1, "regions": [{"id": 5, "peers": [], "pending_peers": [{"id": 7, "store_id": 2}]}]}
    )
    sig = evaluate(snap(stores, region_checks={"pending-peer": check}), Memory())
    assert names(sig) == {
        ("store_disconnected", "store/2"),
        ("store_down", "store/3"),
        ("region_unhealthy", "store/2"),
    }
    disc = next(s for s in sig if s.invariant == "store_disconnected")
    assert disc.observation.data["heartbeat_age_s"] == 25.0


def test_pd_unreachable_and_unhealthy_member() -> None:
    sig = evaluate(snap([], fresh=False, pd_error="PD at http://pd is unreachable"), Memory())
    assert names(sig) == {("pd_unhealthy", "pd")}
    from controller.pd import HealthMember

    members = [
        HealthMember(name="pd-0", member_id=1, health=True),
        HealthMember(name="pd-1", member_id=2, health=False),
    ]
    sig = evaluate(snap([], pd_health=members), Memory())
    assert names(sig) == {("pd_unhealthy", "pd")} and "pd-1" in sig[0].observation.detail


def test_a_failed_scrape_the_probe_contradicts_is_no_signal() -> None:
    stores = [store(1), store(2)]
    up = {"127.0.10.1:20180": 1.0, "127.0.10.2:20180": 0.0}
    probes = {a: ProbeResult(True, "HTTP 200", 1.0) for a in up}
    assert evaluate(snap(stores, up=up, probes=probes), Memory()) == []
    probes["127.0.10.2:20180"] = ProbeResult(False, "ConnectError", 0.3)
    assert names(evaluate(snap(stores, up=up, probes=probes), Memory())) == {("store_unreachable", "store/2")}


def test_a_target_that_vanishes_from_prometheus_is_down_not_no_data() -> None:
    memory = Memory()
    stores = [store(1), store(2)]
    both = {"127.0.10.1:20180": 1.0, "127.0.10.2:20180": 1.0}
    assert evaluate(snap(stores, up=both), memory) == []
    # Service discovery dropped tikv-1's target (its pod is gone): a scrape failure.
    sig = evaluate(snap(stores, up={"127.0.10.1:20180": 1.0}), memory)
    assert names(sig) == {("store_unreachable", "store/2")} and "vanished" in sig[0].observation.detail
    # A store Prometheus never had a target for is not reported missing.
    assert evaluate(snap([store(1), store(3)], up={"127.0.10.1:20180": 1.0}), memory) == []
    # A vanished target the probe contradicts (the store answers) needs a second signal.
    probes = {"127.0.10.2:20180": ProbeResult(True, "HTTP 200", 1.0)}
    assert evaluate(snap(stores, up={"127.0.10.1:20180": 1.0}, probes=probes), memory) == []


def test_a_new_pd_leader_is_a_signal_once() -> None:
    memory = Memory()
    assert evaluate(snap([], pd_leader="pd-0"), memory) == []
    assert evaluate(snap([], pd_leader=None), memory) == [], "no leader during the election: no change yet"
    sig = evaluate(snap([], pd_leader="pd-1"), memory)
    assert names(sig) == {("pd_leader_changed", "pd")}
    assert sig[0].observation.data == {"previous": "pd-0", "current": "pd-1"}
    assert evaluate(snap([], pd_leader="pd-1"), memory) == []
    assert evaluate(snap([], pd_leader="pd-2", pd_error="PD unreachable"), memory) != []  # pd_unhealthy only
    assert memory.pd_leader == "pd-1", "a failed look says nothing about the leader"
