"""Which connections Kubernetes NetworkPolicies allow between the emulated cluster's pods, and
from outside them, as a CNI that enforces them would decide.

The rules are Kubernetes' own: a pod is isolated for ingress (egress) once any policy in its
namespace selects it with that policy type; an isolated pod admits only what some selecting
policy's rules allow (an empty ``from``/``to`` allows every peer; ``ports`` narrows it); a
connection needs the source's egress and the destination's ingress. Policies are stateful: the
answers to an allowed connection flow back whatever the other direction says.

Peers are pods in the emulated cluster's namespace or ``OUTSIDE``: the sandbox's own processes
(the monitor, Prometheus, the clients) run on the host, and stand for what they are in a real
cluster, pods in another namespace (``OUTSIDE_NAMESPACE``, no labels). An ``ipBlock`` matches
by address, pods included, as Calico applies it (Kubernetes leaves it to the CNI).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


OUTSIDE_NAMESPACE = "sandbox-host"


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod, its labels and namespace."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""
    ip: str = "127.0.0.1"


OUTSIDE = Peer("outside", {}, OUTSIDE_NAMESPACE)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions): an empty one selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pod_selector: Mapping[str, Any]
    types: frozenset[str]
    ingress: tuple[Mapping[str, Any], ...]
    egress: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Policy:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        ingress = tuple(spec.get("ingress") or ())
        egress = tuple(spec.get("egress") or ())
        # Without policyTypes: Ingress always, Egress when the policy has egress rules.
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if egress else ["Ingress"])
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            pod_selector=spec.get("podSelector") or {},
            types=frozenset(types),
            ingress=ingress,
            egress=egress,
        )

    def applies_to(self, pod: Peer, direction: str) -> bool:
        return (
            pod.namespace == self.namespace
            and direction in self.types
            and selects(self.pod_selector, pod.labels)
        )


def _peer_matches(rule_peer: Mapping[str, Any], policy_namespace: str, other: Peer) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"] or {}
        address = ipaddress.ip_address(other.ip)
        inside = address in ipaddress.ip_network(block.get("cidr", "0.0.0.0/0"), strict=False)
        excepted = any(address in ipaddress.ip_network(c, strict=False) for c in block.get("except") or [])
        return inside and not excepted
    namespaces = rule_peer.get("namespaceSelector")
    if namespaces is None:
        in_namespace = other.namespace == policy_namespace
    else:
        in_namespace = selects(namespaces, {NAMESPACE_NAME_LABEL: other.namespace})
    return in_namespace and selects(rule_peer.get("podSelector"), other.labels)


def _port_matches(rule: Mapping[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        if (entry.get("protocol") or "TCP") != "TCP":
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, int):
            end = entry.get("endPort") or wanted
            if wanted <= port <= end:
                return True
    return False


def _rule_admits(rule: Mapping[str, Any], key: str, namespace: str, other: Peer, port: int) -> bool:
    peers = rule.get(key)
    if not _port_matches(rule, port):
        return False
    return not peers or any(_peer_matches(p, namespace, other) for p in peers)


class Reachability:
    """The policies in force, asked about one connection at a time."""

    def __init__(self, policies: Iterable[Policy] = ()) -> None:
        self.policies = tuple(policies)

    def allows(self, source: Peer, destination: Peer, port: int) -> bool:
        return self._ingress(source, destination, port) and self._egress(source, destination, port)

    def _ingress(self, source: Peer, destination: Peer, port: int) -> bool:
        selecting = [p for p in self.policies if p.applies_to(destination, "Ingress")]
        return not selecting or any(
            _rule_admits(rule, "from", p.namespace, source, port) for p in selecting for rule in p.ingress
        )

    def _egress(self, source: Peer, destination: Peer, port: int) -> bool:
        selecting = [p for p in self.policies if p.applies_to(source, "Egress")]
        return not selecting or any(
            _rule_admits(rule, "to", p.namespace, destination, port) for p in selecting for rule in p.egress
        )
