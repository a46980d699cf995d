"""tidb-operator v2's part in the sandbox: each TiKV and PD instance (``tikvs`` and ``pds`` of
``core.pingcap.com``) has one pod that the operator creates itself (no StatefulSet), named
``<group>-<component>-<suffix>`` for the instance ``<group>-<suffix>``, owned by the instance,
recreated under the same name when it is deleted, and its spec re-applied when someone changes it
(tidb-operator v2 server-side-applies the pod, forced, on every change it sees: a swapped image
goes back). A Cluster with ``spec.paused`` is left alone, as v2's controllers do: its instances'
pods are neither re-applied nor recreated until it is resumed.

The real operator reacts to watch events within milliseconds; this one looks every
``period`` seconds, which only delays a replacement by that much."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger(__name__)

GROUP, VERSION = "core.pingcap.com", "v1alpha1"
COMPONENTS = {"tikv": "tikvs", "pd": "pds"}  # component -> the instances' plural
IMAGES = {"tikv": "pingcap/tikv", "pd": "pingcap/pd"}
PORTS = {"tikv": [("client", 20160), ("status", 20180)], "pd": [("client", 2379), ("peer", 2380)]}


@dataclass(frozen=True)
class Instance:
    component: str
    name: str  # <group>-<suffix>
    uid: str
    cluster: str
    group: str
    version: str
    subdomain: str

    @property
    def pod_name(self) -> str:
        prefix, _, suffix = self.name.rpartition("-")
        return f"{prefix}-{self.component}-{suffix}"

    @property
    def image(self) -> str:
        return f"{IMAGES[self.component]}:{self.version}"


def instance_of(component: str, obj: dict[str, Any]) -> Instance:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    labels = meta.get("labels") or {}
    return Instance(
        component=component,
        name=meta["name"],
        uid=meta["uid"],
        cluster=(spec.get("cluster") or {}).get("name", labels.get("pingcap.com/cluster", "")),
        group=labels.get("pingcap.com/group", component),
        version=spec.get("version", "v8.5.0"),
        subdomain=spec.get("subdomain", ""),
    )


def pod_labels(instance: Instance) -> dict[str, str]:
    """tidb-operator v2's labels, with the app.kubernetes.io ones it still sets for v1's users."""
    return {
        "pingcap.com/managed-by": "tidb-operator",
        "pingcap.com/cluster": instance.cluster,
        "pingcap.com/component": instance.component,
        "pingcap.com/group": instance.group,
        "pingcap.com/instance": instance.name,
        "app.kubernetes.io/name": "tidb-cluster",
        "app.kubernetes.io/component": instance.component,
        "app.kubernetes.io/instance": instance.cluster,
        "app.kubernetes.io/managed-by": "tidb-operator",
    }


def pod_manifest(instance: Instance) -> dict[str, Any]:
    """The pod the operator creates for an instance: the server started directly (no shell), a
    termination grace of 65535 s (TiKV evicts its leaders first), owned by the instance."""
    component = instance.component
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": instance.pod_name,
            "labels": pod_labels(instance),
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "TiKV" if component == "tikv" else "PD",
                    "name": instance.name,
                    "uid": instance.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "hostname": instance.pod_name,
            "subdomain": instance.subdomain,
            "terminationGracePeriodSeconds": 65535,
            "containers": [
                {
                    "name": component,
                    "image": instance.image,
                    "command": [f"/{component}-server", "--config", f"/etc/{component}/config.toml"],
                    "ports": [{"name": n, "containerPort": p} for n, p in PORTS[component]],
                }
            ],
        },
    }


class InstanceOperator:
    def __init__(self, api: client.ApiClient, namespace: str, period: float = 0.3) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.period = period

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server restarting shows as connection errors
                log.warning("tidb-operator v2 stand-in: %s", exc)
            await asyncio.sleep(self.period)

    async def reconcile(self) -> None:
        pods = await self.core.list_namespaced_pod(
            self.namespace, label_selector="pingcap.com/managed-by=tidb-operator"
        )
        by_name = {p.metadata.name: p for p in pods.items}
        clusters = await self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "clusters")
        paused = {
            c["metadata"]["name"] for c in clusters.get("items", []) if (c.get("spec") or {}).get("paused")
        }
        await self._publish_pd_addresses(clusters.get("items", []), paused)
        for component, plural in COMPONENTS.items():
            listing = await self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
            for obj in listing.get("items", []):
                instance = instance_of(component, obj)
                if instance.cluster in paused:
                    continue
                pod = by_name.get(instance.pod_name)
                if pod is None:
                    await self._create(instance)
                elif pod.metadata.deletion_timestamp is None:
                    await self._reapply_image(instance, pod)

    async def _publish_pd_addresses(self, clusters: list[dict[str, Any]], paused: set[str]) -> None:
        """The Cluster's ``status.pd``, as v2's cluster controller writes it: its PD group's
        Service ``<group>-pd.<namespace>`` on the client port, https when the cluster runs TLS."""
        groups = await self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "pdgroups")
        for cluster in clusters:
            name = cluster["metadata"]["name"]
            group = next(
                (
                    g["metadata"]["name"]
                    for g in groups.get("items", [])
                    if ((g.get("spec") or {}).get("cluster") or {}).get("name") == name
                ),
                None,
            )
            if group is None or name in paused:
                continue
            tls = (((cluster.get("spec") or {}).get("tlsCluster")) or {}).get("enabled")
            address = f"{'https' if tls else 'http'}://{group}-pd.{self.namespace}:{PORTS['pd'][0][1]}"
            if (cluster.get("status") or {}).get("pd") != address:
                await self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    "clusters",
                    name,
                    {"status": {"pd": address}},
                    _content_type="application/merge-patch+json",  # type: ignore[call-arg]
                )

    async def _create(self, instance: Instance) -> None:
        try:
            await self.core.create_namespaced_pod(self.namespace, pod_manifest(instance))  # type: ignore[arg-type]
            log.info("created pod %s for %s %s", instance.pod_name, instance.component, instance.name)
        except ApiException as exc:
            if exc.status != 409:  # the old pod is still being removed: next look
                raise

    async def _reapply_image(self, instance: Instance, pod: Any) -> None:
        containers = pod.spec.containers or []
        for index, container in enumerate(containers):
            if container.name == instance.component and container.image != instance.image:
                patch = [
                    {"op": "replace", "path": f"/spec/containers/{index}/image", "value": instance.image}
                ]
                await self.core.patch_namespaced_pod(
                    instance.pod_name,
                    self.namespace,
                    patch,
                    _content_type="application/json-patch+json",  # type: ignore[call-arg]
                )
                log.info(
                    "re-applied %s's image %s (was %s)", instance.pod_name, instance.image, container.image
                )
