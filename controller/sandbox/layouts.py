"""The Kubernetes objects of an emulated cluster in the layout a deployment tool creates.

``plain``: this project's own manifests (``tikv-cluster.yaml``: StatefulSets ``pd`` and ``tikv``,
pods ``tikv-N``, TiKV started by its image's entrypoint).

``tidb-operator-v2``: tidb-operator v2's objects (``core.pingcap.com``: a Cluster, a PDGroup and
a TiKVGroup, and one PD or TiKV instance per member); the pods are the operator's to create, which
the emulator does in the sandbox (``controller/emulator/operator_v2.py``).

``tidb-operator-v1``: what tidb-operator v1 creates for a TidbCluster named ``basic``: the
StatefulSets ``basic-pd`` and ``basic-tikv`` (pods ``basic-tikv-N``), the services ``basic-pd``
(PD's client address), ``basic-pd-peer`` and ``basic-tikv-peer`` (headless), its labels
(``app.kubernetes.io/name: tidb-cluster``, ``component``, ``instance``, ``managed-by:
tidb-operator``) and containers started through a shell script from a ConfigMap
(``command: ["/bin/sh", "/usr/local/bin/tikv_start_script.sh"]``). The objects are written here
from tidb-operator's documented layout, not copied from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Layout = Literal["plain", "tidb-operator-v1", "tidb-operator-v2"]
TIKV_IMAGE = "pingcap/tikv:v8.5.0"
PD_IMAGE = "pingcap/pd:v8.5.0"


@dataclass(frozen=True)
class ClusterNames:
    """Where things are in a layout: what the sandbox, the emulator and a drill's spec use."""

    tikv_statefulset: str
    pd_statefulset: str
    tikv_peer_service: str
    # The selector a user of this layout writes for the TiKV pods of this one cluster.
    tikv_selector: dict[str, str]
    # PD's client address inside the cluster (service.namespace:2379).
    pd_service: str

    def tikv_pod(self, ordinal: int) -> str:
        return f"{self.tikv_statefulset}-{ordinal}"


def names(layout: Layout, cluster: str = "basic") -> ClusterNames:
    if layout == "plain":
        return ClusterNames("tikv", "pd", "tikv-peer", {"app.kubernetes.io/component": "tikv"}, "pd")
    if layout == "tidb-operator-v2":
        # No StatefulSets: the operator names each pod after its instance (tikv-tikv-<suffix>).
        return ClusterNames(
            tikv_statefulset="",
            pd_statefulset="",
            tikv_peer_service="tikv-peer",
            tikv_selector={"pingcap.com/cluster": cluster, "pingcap.com/component": "tikv"},
            pd_service="pd-pd",  # the PD group "pd"'s Service, <group>-pd
        )
    return ClusterNames(
        tikv_statefulset=f"{cluster}-tikv",
        pd_statefulset=f"{cluster}-pd",
        tikv_peer_service=f"{cluster}-tikv-peer",
        tikv_selector={"app.kubernetes.io/instance": cluster, "app.kubernetes.io/component": "tikv"},
        pd_service=f"{cluster}-pd",
    )


def _labels(cluster: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tidb-cluster",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/managed-by": "tidb-operator",
    }


def _service(
    name: str, labels: dict[str, str], ports: list[tuple[str, int]], *, headless: bool
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": labels,
        "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
    }
    if headless:
        spec |= {"clusterIP": "None", "publishNotReadyAddresses": True}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels}, "spec": spec}


def _start_script(component: str, cluster: str) -> str:
    """A start script in the spirit of tidb-operator's: wait for the pod's own DNS name, then exec
    the server with its advertised address (the emulator never runs it; a real kubelet would)."""
    peer = f"{cluster}-{component}-peer"
    binary = "/tikv-server" if component == "tikv" else "/pd-server"
    return (
        "#!/bin/sh\nset -uo pipefail\n"
        f'ADVERTISE="${{POD_NAME}}.{peer}.${{NAMESPACE}}.svc"\n'
        f"exec {binary} --advertise-addr=${{ADVERTISE}}:{20160 if component == 'tikv' else 2379}"
        f" --config=/etc/{component}/config-file\n"
    )


def _statefulset(
    cluster: str, component: str, image: str, replicas: int, ports: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    name = f"{cluster}-{component}"
    labels = _labels(cluster, component)
    script = f"{component}_start_script.sh"
    container = {
        "name": component,
        "image": image,
        "command": ["/bin/sh", f"/usr/local/bin/{script}"],
        "ports": [{"name": n, "containerPort": p} for n, p in ports],
        "env": [
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [{"name": "startup-script", "mountPath": "/usr/local/bin", "readOnly": True}],
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"startup-script": _start_script(component, cluster)},
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "serviceName": f"{name}-peer",
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "startup-script",
                            "configMap": {"name": name, "items": [{"key": "startup-script", "path": script}]},
                        }
                    ],
                },
            },
        },
    }
    return [config_map, statefulset]


def tidb_operator_v1(cluster: str, stores: int) -> list[dict[str, Any]]:
    """tidb-operator v1's objects for a TidbCluster named ``cluster``: 3 PD, ``stores`` TiKV."""
    pd, tikv = _labels(cluster, "pd"), _labels(cluster, "tikv")
    return [
        _service(f"{cluster}-pd", pd, [("client", 2379)], headless=False),
        _service(f"{cluster}-pd-peer", pd, [("tcp-peer-2380", 2380), ("tcp-peer-2379", 2379)], headless=True),
        _service(f"{cluster}-tikv-peer", tikv, [("peer", 20160), ("status", 20180)], headless=True),
        *_statefulset(cluster, "pd", PD_IMAGE, 3, [("server", 2379), ("peer", 2380)]),
        *_statefulset(cluster, "tikv", TIKV_IMAGE, stores, [("server", 20160), ("status", 20180)]),
    ]


def tidb_cluster_crd() -> dict[str, Any]:
    """A stand-in for tidb-operator's TidbCluster CRD (group, version, kind and plural as
    tidb-operator serves them; the schema left open): enough for the object to exist and be read."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "tidbclusters.pingcap.com"},
        "spec": {
            "group": "pingcap.com",
            "scope": "Namespaced",
            "names": {
                "kind": "TidbCluster",
                "plural": "tidbclusters",
                "singular": "tidbcluster",
                "shortNames": ["tc"],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def tidb_cluster_object(cluster: str, stores: int, *, tls: bool) -> dict[str, Any]:
    """The TidbCluster the v1 layout's objects belong to (the fields a drill derives from)."""
    return {
        "apiVersion": "pingcap.com/v1alpha1",
        "kind": "TidbCluster",
        "metadata": {"name": cluster},
        "spec": {
            "version": TIKV_IMAGE.rsplit(":", 1)[-1],
            "tlsCluster": {"enabled": tls},
            "pd": {"baseImage": PD_IMAGE.rsplit(":", 1)[0], "replicas": 3},
            "tikv": {"baseImage": TIKV_IMAGE.rsplit(":", 1)[0], "replicas": stores},
        },
    }


V2_KINDS = {  # plural -> kind, of the v2 objects the sandbox needs
    "clusters": "Cluster",
    "pdgroups": "PDGroup",
    "tikvgroups": "TiKVGroup",
    "pds": "PD",
    "tikvs": "TiKV",
}


def v2_crds() -> list[dict[str, Any]]:
    """Stand-ins for tidb-operator v2's CRDs (group, version, kinds and plurals as v2 serves them;
    the schemas left open)."""
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.core.pingcap.com"},
            "spec": {
                "group": "core.pingcap.com",
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "versions": [
                    {
                        "name": "v1alpha1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        for plural, kind in V2_KINDS.items()
    ]


def tidb_operator_v2(cluster: str, stores: int, suffixes: list[str]) -> list[dict[str, Any]]:
    """A v2 Cluster with a PDGroup ``pd`` (3 members) and a TiKVGroup ``tikv`` (``stores``), one
    instance each named ``<group>-<suffix>`` (``suffixes``: 3 + stores of them), and the headless
    services the pods' names resolve under."""
    version = TIKV_IMAGE.rsplit(":", 1)[-1]

    def meta(name: str, group: str, component: str) -> dict[str, Any]:
        labels = {
            "pingcap.com/cluster": cluster,
            "pingcap.com/group": group,
            "pingcap.com/component": component,
        }
        return {"name": name, "labels": labels}

    def v2(kind: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "core.pingcap.com/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}

    objects: list[dict[str, Any]] = [v2("Cluster", {"name": cluster}, {})]
    for component, group_kind, replicas in (("pd", "PDGroup", 3), ("tikv", "TiKVGroup", stores)):
        objects.append(
            v2(
                group_kind,
                meta(component, component, component),
                {"cluster": {"name": cluster}, "replicas": replicas},
            )
        )
        selector = {"pingcap.com/cluster": cluster, "pingcap.com/component": component}
        ports = (
            [("client", 2379), ("peer", 2380)]
            if component == "pd"
            else [("client", 20160), ("status", 20180)]
        )
        objects.append(_service(f"{component}-peer", selector, ports, headless=True))
        if component == "pd":  # PD's client Service, <group>-pd (the Cluster's status.pd names it)
            objects.append(_service("pd-pd", selector, [("client", 2379)], headless=False))
    taken = iter(suffixes)
    for component, kind, count in (("pd", "PD", 3), ("tikv", "TiKV", stores)):
        for _ in range(count):
            name = f"{component}-{next(taken)}"
            objects.append(
                v2(
                    kind,
                    meta(name, component, component),
                    {"cluster": {"name": cluster}, "version": version, "subdomain": f"{component}-peer"},
                )
            )
    return objects
