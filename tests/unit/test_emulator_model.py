"""The emulator's clock-driven model alone: elections, PD's balance back-off, replica repair."""

from __future__ import annotations

from controller.emulator.model import (
    BALANCE_IDLE_INTERVAL,
    DISCONNECTED_AFTER,
    ELECTION_TIMEOUT,
    PD_LEADER_LEASE,
    REPLICA_REPAIR_SECONDS,
    EmulatedCluster,
)
from controller.emulator.netpolicy import Policy


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _cluster(stores: int, clock: Clock, **kw: float) -> EmulatedCluster:
    cluster = EmulatedCluster(namespace="tikv", clock=clock, **kw)  # type: ignore[arg-type]
    for i in range(stores):
        cluster.pod_ready(f"tikv-{i}")
    return cluster


def _advance(cluster: EmulatedCluster, clock: Clock, seconds: float, step: float = 0.1) -> None:
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        cluster.tick()


def test_leaders_stay_off_a_restarted_store_for_the_balance_schedulers_idle_interval() -> None:
    clock = Clock()
    cluster = _cluster(3, clock)
    _advance(cluster, clock, 5)
    victim = cluster.stores["tikv-1"]
    assert cluster.leader_count(victim) > 0
    cluster.pod_gone("tikv-1")
    _advance(cluster, clock, 1)
    cluster.pod_ready("tikv-1")  # back before its regions' election timeout ran out
    assert cluster.leader_count(victim) > 0, "PD still shows the old leader until the election"
    deadline = clock.now + ELECTION_TIMEOUT[1]
    while cluster.leader_count(victim) > 0 and clock.now < deadline:
        _advance(cluster, clock, 0.1)
    assert cluster.leader_count(victim) == 0, "the election moved every leader off"
    # PD's balance-leader scheduler, idle while the cluster was balanced, waits out its back-off.
    _advance(cluster, clock, BALANCE_IDLE_INTERVAL - 0.3)
    assert cluster.leader_count(victim) == 0
    _advance(cluster, clock, 30)
    assert cluster.leader_count(victim) > 0, "then leaders drift back"


def test_a_down_store_has_its_replicas_rebuilt_on_a_fourth_store() -> None:
    clock = Clock()
    cluster = _cluster(4, clock, max_store_down_time=60.0)
    _advance(cluster, clock, 2)
    victim = cluster.stores["tikv-2"]
    held = cluster.region_count_of(victim)
    assert held > 0
    cluster.pod_gone("tikv-2")
    _advance(cluster, clock, DISCONNECTED_AFTER + 1)
    assert cluster.state_name(victim) == "Disconnected" and cluster.region_count_of(victim) == held
    _advance(cluster, clock, 60 - DISCONNECTED_AFTER)
    assert cluster.state_name(victim) == "Down"
    assert cluster.regions_with("miss-peer")
    learners = {sid for _, ids in cluster.regions_with("pending-peer") for sid in ids} - {victim.id}
    assert learners and victim.id not in learners, "new replicas catch up on the other stores"
    _advance(cluster, clock, REPLICA_REPAIR_SECONDS + 1)
    assert cluster.region_count_of(victim) == 0
    assert all(len(set(r.peer_store_ids)) == 3 for r in cluster.regions)
    assert not cluster.regions_with("miss-peer") and not cluster.regions_with("pending-peer")


def test_with_three_stores_there_is_nowhere_to_rebuild() -> None:
    clock = Clock()
    cluster = _cluster(3, clock, max_store_down_time=60.0)
    _advance(cluster, clock, 2)
    victim = cluster.stores["tikv-0"]
    held = cluster.region_count_of(victim)
    cluster.pod_gone("tikv-0")
    _advance(cluster, clock, 70)
    assert cluster.state_name(victim) == "Down" and cluster.region_count_of(victim) == held
    assert cluster.regions_with("miss-peer")


def test_pd_members_elect_a_new_leader_after_the_lease() -> None:
    clock = Clock()
    cluster = EmulatedCluster(namespace="tikv", clock=clock)  # type: ignore[arg-type]
    for name in ("pd-0", "pd-1", "pd-2"):
        cluster.pd_member_up(name)
    cluster.tick()
    assert cluster.pd_leader == "pd-0" and cluster.pd_members == ["pd-0", "pd-1", "pd-2"]
    cluster.pd_member_gone("pd-0")
    assert cluster.pd_leader is None and cluster.pd_down == {"pd-0"}
    _advance(cluster, clock, PD_LEADER_LEASE - 0.2)
    assert cluster.pd_leader is None, "the others wait for the old leader's lease to run out"
    _advance(cluster, clock, 0.3)
    assert cluster.pd_leader == "pd-1"
    cluster.pd_member_up("pd-0")  # the StatefulSet's replacement rejoins as a follower
    assert cluster.pd_leader == "pd-1" and not cluster.pd_down


def test_pd_without_a_majority_of_members_elects_no_leader() -> None:
    clock = Clock()
    cluster = EmulatedCluster(namespace="tikv", clock=clock)  # type: ignore[arg-type]
    for name in ("pd-0", "pd-1", "pd-2"):
        cluster.pd_member_up(name)
    cluster.tick()
    cluster.pd_member_gone("pd-2")
    cluster.pd_member_gone("pd-0")
    _advance(cluster, clock, PD_LEADER_LEASE * 3)
    assert cluster.pd_leader is None


def test_a_pd_member_back_before_the_election_loses_it_to_those_that_stayed() -> None:
    clock = Clock()
    cluster = EmulatedCluster(namespace="tikv", clock=clock)  # type: ignore[arg-type]
    for name in ("pd-0", "pd-1", "pd-2"):
        cluster.pd_member_up(name)
    cluster.tick()
    cluster.pd_member_gone("pd-0")
    _advance(cluster, clock, 1.0)
    cluster.pd_member_up("pd-0")  # the StatefulSet's replacement, Ready before the lease ran out
    _advance(cluster, clock, PD_LEADER_LEASE)
    assert cluster.pd_leader == "pd-1"


def _labelled(cluster: EmulatedCluster, stores: int) -> None:
    for i in range(stores):
        cluster.network.set_pod_labels(
            f"tikv-{i}",
            {"app.kubernetes.io/component": "tikv", "statefulset.kubernetes.io/pod-name": f"tikv-{i}"},
        )
    cluster.network.set_pod_labels("pd-0", {"app.kubernetes.io/component": "pd"})
    cluster.pd_member_up("pd-0")


def _isolate(cluster: EmulatedCluster, pod: str, spec: dict[str, object]) -> None:
    selector = {"matchLabels": {"statefulset.kubernetes.io/pod-name": pod}}
    policy = {"metadata": {"name": "cut", "namespace": "tikv"}, "spec": {"podSelector": selector, **spec}}
    cluster.network.set_policies([Policy.from_object(policy)])


def test_a_store_cut_off_from_everything_goes_disconnected_loses_its_leaders_and_comes_back_unrestarted() -> (
    None
):
    clock = Clock()
    cluster = _cluster(3, clock)
    _labelled(cluster, 3)
    _advance(cluster, clock, 5)
    victim, survivor = cluster.stores["tikv-1"], cluster.stores["tikv-0"]
    started = victim.start_timestamp
    led = [r for r in cluster.regions if r.leader_store_id == victim.id]
    assert led
    cut_at = clock.now
    _isolate(cluster, "tikv-1", {"policyTypes": ["Ingress", "Egress"]})
    _advance(cluster, clock, 1)
    assert all(cluster.cut_from_quorum(r, victim) for r in led), "its regions get no answer from it"
    assert not any(cluster.cut_from_quorum(r, survivor) for r in cluster.regions)
    _advance(cluster, clock, ELECTION_TIMEOUT[1])
    assert cluster.leader_count(victim) == 0, "the majority elected new leaders"
    [election] = [e for e in cluster.elections if e.store_id == victim.id]
    assert election.died_at == cut_at + 0.1 and set(election.regions) == {r.id for r in led}
    _advance(cluster, clock, DISCONNECTED_AFTER)
    assert cluster.state_name(victim) == "Disconnected" and victim.alive
    assert survivor.unreachable_by_peer[victim.id] > DISCONNECTED_AFTER * 0.9
    assert victim.unreachable_by_peer[survivor.id] > DISCONNECTED_AFTER * 0.9
    reported = survivor.unreachable_by_peer[victim.id]

    cluster.network.set_policies([])  # the policy deleted
    _advance(cluster, clock, 11)
    assert cluster.state_name(victim) == "Up" and victim.start_timestamp == started, "no restart"
    assert survivor.unreachable_by_peer[victim.id] == reported, "no more failures once it is reachable"
    assert not any(cluster.cut_from_quorum(r, victim) for r in cluster.regions)


def test_a_store_cut_off_from_pd_only_keeps_its_leaders() -> None:
    """Raft between the stores still works: leaders stay, only PD stops hearing from it."""
    clock = Clock()
    cluster = _cluster(3, clock)
    _labelled(cluster, 3)
    _advance(cluster, clock, 5)
    victim = cluster.stores["tikv-1"]
    leaders = cluster.leader_count(victim)
    not_pd = [
        {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["pd"]}
                ]
            }
        }
    ]
    _isolate(cluster, "tikv-1", {"policyTypes": ["Egress"], "egress": [{"to": not_pd}]})
    _advance(cluster, clock, DISCONNECTED_AFTER + ELECTION_TIMEOUT[1])
    assert cluster.state_name(victim) == "Disconnected"
    assert cluster.leader_count(victim) == leaders and not any(
        cluster.cut_from_quorum(r, victim) for r in cluster.regions
    )
    assert not victim.unreachable_by_peer and not cluster.stores["tikv-0"].unreachable_by_peer
