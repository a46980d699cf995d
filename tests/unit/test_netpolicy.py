"""The emulator's reading of NetworkPolicies: Kubernetes' isolation rules, decided per connection."""

from __future__ import annotations

from typing import Any

from controller.emulator.netpolicy import OUTSIDE, Peer, Policy, Reachability

NS = "tikv"
TIKV_1 = Peer(
    "tikv-1", {"app.kubernetes.io/component": "tikv", "statefulset.kubernetes.io/pod-name": "tikv-1"}, NS
)
TIKV_2 = Peer(
    "tikv-2", {"app.kubernetes.io/component": "tikv", "statefulset.kubernetes.io/pod-name": "tikv-2"}, NS
)
PD_0 = Peer("pd-0", {"app.kubernetes.io/component": "pd"}, NS)
ELSEWHERE = Peer("x", {"app.kubernetes.io/component": "pd"}, "other")


def _policy(spec: dict[str, Any], namespace: str = NS) -> Policy:
    return Policy.from_object({"metadata": {"name": "p", "namespace": namespace}, "spec": spec})


VICTIM = {"matchLabels": {"statefulset.kubernetes.io/pod-name": "tikv-1"}}


def test_no_policy_allows_everything() -> None:
    open_ = Reachability()
    assert open_.allows(TIKV_1, PD_0, 2379) and open_.allows(OUTSIDE, TIKV_1, 20180)


def test_deny_all_isolates_only_the_selected_pod_both_ways() -> None:
    cut = Reachability([_policy({"podSelector": VICTIM, "policyTypes": ["Ingress", "Egress"]})])
    assert not cut.allows(TIKV_1, PD_0, 2379), "egress to PD"
    assert not cut.allows(TIKV_2, TIKV_1, 20160) and not cut.allows(TIKV_1, TIKV_2, 20160)
    assert not cut.allows(OUTSIDE, TIKV_1, 20180)
    assert cut.allows(TIKV_2, PD_0, 2379) and cut.allows(OUTSIDE, TIKV_2, 20160)


def test_cut_from_pd_only_keeps_peers_and_outside() -> None:
    """Everything but PD's pods, both ways: a partition from PD."""
    not_pd = [
        {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["pd"]}
                ]
            }
        },
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NS]}
                ]
            }
        },
    ]
    cut = Reachability(
        [
            _policy(
                {
                    "podSelector": VICTIM,
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": not_pd}],
                    "egress": [{"to": not_pd}],
                }
            )
        ]
    )
    assert not cut.allows(TIKV_1, PD_0, 2379) and not cut.allows(PD_0, TIKV_1, 20160)
    assert cut.allows(TIKV_1, TIKV_2, 20160) and cut.allows(TIKV_2, TIKV_1, 20160)
    assert cut.allows(OUTSIDE, TIKV_1, 20180) and cut.allows(ELSEWHERE, TIKV_1, 20160)
    # An ipBlock matches pods by their address too (as Calico applies it): it would let PD in.
    leaky = Reachability(
        [_policy({"podSelector": VICTIM, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})]
    )
    assert leaky.allows(PD_0, TIKV_1, 20160)


def test_policy_types_ports_and_namespaces() -> None:
    # No policyTypes and no egress rules: ingress only.
    ingress_only = Reachability([_policy({"podSelector": VICTIM})])
    assert not ingress_only.allows(TIKV_2, TIKV_1, 20160) and ingress_only.allows(TIKV_1, TIKV_2, 20160)
    # A rule with ports admits those ports only.
    status_only = Reachability([_policy({"podSelector": VICTIM, "ingress": [{"ports": [{"port": 20180}]}]})])
    assert status_only.allows(OUTSIDE, TIKV_1, 20180) and not status_only.allows(OUTSIDE, TIKV_1, 20160)
    ranged = Reachability(
        [_policy({"podSelector": VICTIM, "ingress": [{"ports": [{"port": 20000, "endPort": 20200}]}]})]
    )
    assert ranged.allows(TIKV_2, TIKV_1, 20160) and not ranged.allows(TIKV_2, TIKV_1, 2379)
    # A podSelector alone means the policy's namespace; a namespaceSelector widens it.
    same_ns = Reachability([_policy({"podSelector": VICTIM, "ingress": [{"from": [{"podSelector": {}}]}]})])
    assert same_ns.allows(PD_0, TIKV_1, 20160) and not same_ns.allows(ELSEWHERE, TIKV_1, 20160)
    assert not same_ns.allows(OUTSIDE, TIKV_1, 20160), "the host stands for a pod elsewhere"
    any_ns = Reachability(
        [_policy({"podSelector": VICTIM, "ingress": [{"from": [{"namespaceSelector": {}}]}]})]
    )
    assert any_ns.allows(ELSEWHERE, TIKV_1, 20160) and any_ns.allows(OUTSIDE, TIKV_1, 20160)
    # A policy in another namespace selects nothing here.
    assert Reachability([_policy({"podSelector": {}}, namespace="other")]).allows(TIKV_2, TIKV_1, 20160)
    # An ipBlock's except carves the host out.
    no_host = Reachability(
        [
            _policy(
                {
                    "podSelector": VICTIM,
                    "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["127.0.0.0/8"]}}]}],
                }
            )
        ]
    )
    assert not no_host.allows(OUTSIDE, TIKV_1, 20180)


def test_several_policies_add_up() -> None:
    """Isolation is the union of what the selecting policies allow."""
    deny = _policy({"podSelector": VICTIM, "policyTypes": ["Ingress"]})
    allow_pd = _policy(
        {
            "podSelector": VICTIM,
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "pd"}}}]}],
        }
    )
    both = Reachability([deny, allow_pd])
    assert both.allows(PD_0, TIKV_1, 20160) and not both.allows(TIKV_2, TIKV_1, 20160)
