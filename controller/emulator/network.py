"""The emulated cluster's network: which of its pods reach which, under the NetworkPolicies in
force (``netpolicy``). TiKV's traffic on it: a store heartbeats to PD's leader on 2379, Raft
messages go both ways between stores on 20160, clients reach a store on 20160 and Prometheus or
a probe its status port 20180. Everything is allowed until a policy says otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.emulator.netpolicy import OUTSIDE, Peer, Policy, Reachability

PD_CLIENT_PORT = 2379
TIKV_PORT = 20160
STATUS_PORT = 20180
COMPONENT_LABEL = "app.kubernetes.io/component"
V2_COMPONENT_LABEL = "pingcap.com/component"


@dataclass
class Network:
    namespace: str = "tikv"
    policies: list[Policy] = field(default_factory=list)
    pod_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # TiKV and PD pods
    _cache: dict[tuple[str, str, int], bool] = field(default_factory=dict)

    def set_policies(self, policies: list[Policy]) -> None:
        self.policies = [p for p in policies if p.namespace == self.namespace]
        self._cache.clear()

    def set_pod_labels(self, pod: str, labels: dict[str, str] | None) -> None:
        """A pod's labels as the API server has them (None: the pod is gone)."""
        if labels is None:
            self.pod_labels.pop(pod, None)
        else:
            self.pod_labels[pod] = dict(labels)
        self._cache.clear()

    @property
    def enforced(self) -> bool:
        return bool(self.policies)

    def _peer(self, pod: str) -> Peer:
        return Peer(pod, self.pod_labels.get(pod, {}), self.namespace)

    def _allows(self, source: str, destination: str, port: int) -> bool:
        if not self.policies:
            return True
        key = (source, destination, port)
        if key not in self._cache:
            src = OUTSIDE if source == OUTSIDE.name else self._peer(source)
            dst = OUTSIDE if destination == OUTSIDE.name else self._peer(destination)
            self._cache[key] = Reachability(self.policies).allows(src, dst, port)
        return self._cache[key]

    def pd_pods(self) -> list[str]:
        return sorted(
            pod
            for pod, labels in self.pod_labels.items()
            if labels.get(COMPONENT_LABEL) == "pd" or labels.get(V2_COMPONENT_LABEL) == "pd"
        )

    def reaches_pd(self, store_pod: str, pd_leader: str | None) -> bool:
        """Can the store's heartbeats reach PD's leader? With no PD pod (PD outside the cluster),
        PD is the host."""
        if not self.policies:
            return True
        pods = self.pd_pods()
        target = pd_leader if pd_leader in pods else (pods[0] if pods else OUTSIDE.name)
        return self._allows(store_pod, target, PD_CLIENT_PORT)

    def connected(self, a: str, b: str) -> bool:
        """Raft between two stores: each must reach the other."""
        return self._allows(a, b, TIKV_PORT) and self._allows(b, a, TIKV_PORT)

    def clients_reach(self, store_pod: str) -> bool:
        """Can a client outside the pods (the sandbox's client, go-ycsb) reach the store?"""
        return self._allows(OUTSIDE.name, store_pod, TIKV_PORT)

    def status_reachable(self, store_pod: str) -> bool:
        """Can Prometheus or a probe on the host reach the store's status port?"""
        return self._allows(OUTSIDE.name, store_pod, STATUS_PORT)
