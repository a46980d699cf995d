"""network-partition's NetworkPolicy: the victim pod cut off from PD, from its TiKV peers, or from
both, and from nothing else.

A NetworkPolicy can only allow, so the cut is written as everything but it: the victim's ingress
and egress admit the pods of its own namespace that are not of a cut-off component (a pod without
the component label included), and every pod of every other namespace (DNS, monitoring, clients
and the monitor run there). No ``ipBlock``: some CNIs (Calico) match pod addresses with it, and
``0.0.0.0/0`` would let PD and the peers back in. Traffic from the node itself (the kubelet's
probes) is not subject to NetworkPolicies on the common CNIs, so the pod stays Ready.

Enforcement is the CNI's: without one that enforces NetworkPolicies (flannel alone does not), the
policy is created and nothing is cut. Some CNIs leave connections that existed before the policy
open. The policy carries the drill's uid as a label (the teardown deletes it by name and that
label). It is owned by the ChaosDemo only when both are in one namespace: Kubernetes' garbage
collector treats an owner in another namespace as absent and would delete the policy at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controller.operator.model import PartitionFrom

COMPONENT_LABELS = ("app.kubernetes.io/component", "pingcap.com/component")
# Labels that name exactly one pod: a StatefulSet's (plain manifests, tidb-operator v1) and
# tidb-operator v2's instance.
POD_IDENTITY_LABELS = ("statefulset.kubernetes.io/pod-name", "pingcap.com/instance")
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DRILL_LABEL = "chaos.operator.dev/drill-uid"


def identity_selector(labels: Mapping[str, str]) -> dict[str, str] | None:
    """A selector for this one pod, from a label its controller gives only it. None: the pod has
    none (the drill must refuse rather than cut off more than its victim)."""
    for key in POD_IDENTITY_LABELS:
        if labels.get(key):
            return {key: labels[key]}
    return None


def component_label(labels: Mapping[str, str]) -> str | None:
    """The label key the cluster names components by (the victim's own)."""
    return next((key for key in COMPONENT_LABELS if labels.get(key)), None)


def _allowed_peers(
    namespace: str, component_key: str, cut_from: Iterable[PartitionFrom]
) -> list[dict[str, Any]]:
    return [
        {
            "podSelector": {
                "matchExpressions": [{"key": component_key, "operator": "NotIn", "values": sorted(cut_from)}]
            }
        },
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": [namespace]}
                ]
            }
        },
    ]


def partition_policy(
    *,
    name: str,
    namespace: str,
    victim: Mapping[str, str],
    component_key: str,
    cut_from: Iterable[PartitionFrom],
    drill_uid: str,
    owner: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The NetworkPolicy that isolates the pod ``victim`` selects from the components
    ``cut_from``. ``owner``: the ChaosDemo's apiVersion, kind, name and uid, when it is in
    ``namespace`` (never across namespaces)."""
    peers = _allowed_peers(namespace, component_key, cut_from)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {DRILL_LABEL: drill_uid}}
    if owner is not None:
        metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": False}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchLabels": dict(victim)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": peers}],
            "egress": [{"to": peers}],
        },
    }


@dataclass(frozen=True)
class PartitionRefusal:
    reason: str
    message: str


def policy_name(drill_uid: str, generation: int, index: int) -> str:
    """One name per drill, run and victim: a retry after a crash finds its own policy."""
    return f"chaosdemo-partition-{drill_uid[:8]}-g{generation}-{index}"


def victim_fields(pod: Any, policy: str) -> dict[str, Any] | PartitionRefusal:
    """What the victim record keeps for the cut and its undoing (by field name), or why this
    pod cannot be cut off alone."""
    labels = dict(pod.metadata.labels or {})
    name = pod.metadata.name
    selector = identity_selector(labels)
    if selector is None:
        keys = " or ".join(POD_IDENTITY_LABELS)
        return PartitionRefusal(
            "NoPodIdentityLabel",
            f"pod {name} has no label that names it alone ({keys}): a NetworkPolicy could not select "
            "it without its neighbours",
        )
    component = component_label(labels)
    if component is None:
        return PartitionRefusal(
            "NoComponentLabel",
            f"pod {name} has no component label ({' or '.join(COMPONENT_LABELS)}) to tell PD and TiKV "
            "pods from the others by",
        )
    return {"partition_policy": policy, "partition_selector": selector, "component_label": component}


def made_by(policy: Mapping[str, Any], drill_uid: str) -> bool:
    """Was this NetworkPolicy made by the drill with this uid (its label says so)?"""
    return ((policy.get("metadata") or {}).get("labels") or {}).get(DRILL_LABEL) == drill_uid


def owner_of(drill: Mapping[str, Any]) -> dict[str, str]:
    """An owner reference to the ChaosDemo (only for a policy in its own namespace)."""
    meta = drill["metadata"]
    return {
        "apiVersion": drill["apiVersion"],
        "kind": drill["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
