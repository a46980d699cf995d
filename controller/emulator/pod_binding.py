"""Drive the emulated cluster from the real pods: watch TiKV and PD pods in one namespace.

Each Running+Ready TiKV pod is a live store; a pod that is deleted, not Ready or running a pause
image in place of TiKV is a stopped store. A pod marked for deletion with a grace period serves
until the kubelet (kwok) reports its containers stopped, as TiKV does until it exits after
SIGTERM. A stopped store's status server closes at once, so Prometheus sees ``up`` 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from controller.emulator.model import EmulatedCluster, Store
from controller.images import is_pause_image
from controller.operator.outage import tikv_container

log = logging.getLogger(__name__)

COMPONENT_LABEL = "app.kubernetes.io/component"


def pod_is_serving(pod: Any) -> bool:
    if pod.status is None:
        return False
    if pod.status.phase != "Running":
        return False
    if _runs_pause(pod):
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def _runs_pause(pod: Any) -> bool:
    """A TiKV container swapped for a pause image (store-outage): the pod stays, the store
    process is gone, even while the pod is Ready (a container without a readiness probe)."""
    found = tikv_container(pod.spec.containers or []) if pod.spec else None
    return found is not None and is_pause_image(found[2])


class PodBinding:
    def __init__(
        self,
        api: client.ApiClient,
        cluster: EmulatedCluster,
        on_store_up: Callable[[Store], Awaitable[None]],
        on_store_down: Callable[[str], Awaitable[None]],
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.cluster = cluster
        self.on_store_up = on_store_up
        self.on_store_down = on_store_down
        self.synced = asyncio.Event()

    async def apply(self, event_type: str, pod: Any) -> None:
        labels = pod.metadata.labels or {}
        component = labels.get(COMPONENT_LABEL)
        name = pod.metadata.name
        if component in ("pd", "tikv"):  # what NetworkPolicies select them by
            self.cluster.network.set_pod_labels(name, None if event_type == "DELETED" else labels)
        if component == "pd":
            if event_type != "DELETED" and pod_is_serving(pod):
                self.cluster.pd_member_up(name)
            else:
                self.cluster.pd_member_gone(name)
            return
        if component != "tikv":
            return
        if event_type != "DELETED" and pod_is_serving(pod):
            store = self.cluster.pod_ready(name, node=pod.spec.node_name if pod.spec else None)
            await self.on_store_up(store)
        else:
            gone = self.cluster.pod_gone(name)
            if gone is not None:
                await self.on_store_down(name)

    async def run(self) -> None:
        """List, then watch from that version; re-list after any watch failure."""
        ns = self.cluster.namespace
        selector = f"{COMPONENT_LABEL} in (tikv,pd)"
        while True:
            try:
                listing = await self.core.list_namespaced_pod(ns, label_selector=selector)
                seen = {p.metadata.name for p in listing.items}
                for pod in listing.items:
                    await self.apply("ADDED", pod)
                for pod_name in list(self.cluster.stores):
                    if pod_name not in seen and self.cluster.pod_gone(pod_name) is not None:
                        await self.on_store_down(pod_name)
                for member in self.cluster.pd_members:
                    if member not in seen:
                        self.cluster.pd_member_gone(member)
                self.synced.set()
                stream = watch.Watch()
                async with stream:
                    async for event in stream.stream(
                        self.core.list_namespaced_pod,
                        ns,
                        label_selector=selector,
                        resource_version=listing.metadata.resource_version,
                        timeout_seconds=240,
                        allow_watch_bookmarks=True,
                    ):
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            await self.apply(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                log.warning("pod watch failed (%s); re-listing", exc.status)
                await asyncio.sleep(0.5)
            except Exception as exc:  # API server restarts show up as connection errors
                log.warning("pod watch interrupted (%s); re-listing", exc)
                await asyncio.sleep(0.5)
