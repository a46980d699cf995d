"""Keep the emulated network in step with the NetworkPolicies in the cluster's namespace: list,
then watch from that version; re-list after any watch failure (as the pods' binding does)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from controller.emulator.model import EmulatedCluster
from controller.emulator.netpolicy import Policy

log = logging.getLogger(__name__)


class PolicyBinding:
    def __init__(self, api: client.ApiClient, cluster: EmulatedCluster) -> None:
        self.networking = client.NetworkingV1Api(api)
        self.api = api
        self.cluster = cluster
        self._policies: dict[str, Policy] = {}

    def _apply(self, event_type: str, obj: Any) -> None:
        raw = self.api.sanitize_for_serialization(obj)
        name = raw["metadata"]["name"]
        if event_type == "DELETED":
            self._policies.pop(name, None)
        else:
            self._policies[name] = Policy.from_object(raw)
        self.cluster.tick()  # time up to the change passes under the old network
        self.cluster.network.set_policies(list(self._policies.values()))

    async def run(self) -> None:
        ns = self.cluster.namespace
        while True:
            try:
                listing = await self.networking.list_namespaced_network_policy(ns)
                self._policies = {}
                for policy in listing.items:
                    self._apply("ADDED", policy)
                if not listing.items:
                    self.cluster.network.set_policies([])
                stream = watch.Watch()
                async with stream:
                    async for event in stream.stream(
                        self.networking.list_namespaced_network_policy,
                        ns,
                        resource_version=listing.metadata.resource_version,
                        timeout_seconds=240,
                        allow_watch_bookmarks=True,
                    ):
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self._apply(event["type"], event["object"])
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                log.warning("network policy watch failed (%s); re-listing", exc.status)
                await asyncio.sleep(0.5)
            except Exception as exc:  # API server restarts show up as connection errors
                log.warning("network policy watch interrupted (%s); re-listing", exc)
                await asyncio.sleep(0.5)
