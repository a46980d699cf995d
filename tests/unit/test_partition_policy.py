"""network-partition's NetworkPolicy, checked against Kubernetes' rules as the emulator applies
them: it cuts exactly the directions asked for and leaves everything else reachable."""

from __future__ import annotations

import pytest

from controller.emulator.netpolicy import OUTSIDE, Peer, Policy, Reachability
from controller.operator.partition import (
    DRILL_LABEL,
    PartitionFrom,
    component_label,
    identity_selector,
    partition_policy,
)

NS = "tidb"
COMPONENT = "app.kubernetes.io/component"


def _pod(name: str, component: str | None, namespace: str = NS) -> Peer:
    labels = {"statefulset.kubernetes.io/pod-name": name}
    if component:
        labels[COMPONENT] = component
    return Peer(name, labels, namespace)


VICTIM, PEER, PD = _pod("basic-tikv-1", "tikv"), _pod("basic-tikv-0", "tikv"), _pod("basic-pd-0", "pd")
TIDB, UNLABELLED = _pod("basic-tidb-0", "tidb"), _pod("backup-job", None)
MONITORING, DNS = _pod("prometheus-0", "prometheus", "monitoring"), _pod("coredns", None, "kube-system")


def _reach(cut_from: list[PartitionFrom]) -> Reachability:
    policy = partition_policy(
        name="chaosdemo-partition-x",
        namespace=NS,
        victim=identity_selector(VICTIM.labels) or {},
        component_key=COMPONENT,
        cut_from=cut_from,
        drill_uid="uid-1",
    )
    return Reachability([Policy.from_object(policy)])


def _both_ways(reach: Reachability, other: Peer, port: int) -> bool:
    return reach.allows(VICTIM, other, port) and reach.allows(other, VICTIM, 20160)


@pytest.mark.parametrize(
    ("cut_from", "pd", "peers"),
    [(["pd"], False, True), (["tikv"], True, False), (["pd", "tikv"], False, False)],
)
def test_the_policy_cuts_what_was_asked_and_nothing_else(
    cut_from: list[PartitionFrom], pd: bool, peers: bool
) -> None:
    reach = _reach(cut_from)
    assert _both_ways(reach, PD, 2379) is pd
    assert _both_ways(reach, PEER, 20160) is peers
    # Never cut: the rest of its namespace, other namespaces (DNS, monitoring), the sandbox's host.
    for other in (TIDB, UNLABELLED, MONITORING, DNS, OUTSIDE):
        assert _both_ways(reach, other, 20160), other
    # Only the victim is isolated: the others still reach each other.
    assert reach.allows(PEER, PD, 2379) and reach.allows(PD, PEER, 20160)


def test_the_victim_is_named_by_a_label_only_it_has() -> None:
    assert identity_selector({"statefulset.kubernetes.io/pod-name": "tikv-1", COMPONENT: "tikv"}) == {
        "statefulset.kubernetes.io/pod-name": "tikv-1"
    }
    assert identity_selector({"pingcap.com/instance": "tikv-x7k2p9"}) == {
        "pingcap.com/instance": "tikv-x7k2p9"
    }
    assert identity_selector({COMPONENT: "tikv"}) is None, "a bare pod: nothing names only it"
    assert component_label({"pingcap.com/component": "tikv"}) == "pingcap.com/component"


def test_owned_by_the_drill_only_within_its_namespace_and_labelled_with_it() -> None:
    owner = {"apiVersion": "chaos.operator.dev/v1alpha1", "kind": "ChaosDemo", "name": "d", "uid": "uid-1"}
    args = dict(
        name="p", namespace=NS, victim={"a": "b"}, component_key=COMPONENT, cut_from=["pd"], drill_uid="uid-1"
    )
    owned = partition_policy(**args, owner=owner)  # type: ignore[arg-type]
    assert owned["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert owned["metadata"]["labels"] == {DRILL_LABEL: "uid-1"}
    assert "ownerReferences" not in partition_policy(**args)["metadata"]  # type: ignore[arg-type]
