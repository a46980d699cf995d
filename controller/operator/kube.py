"""The Kubernetes calls the operator makes, on kubernetes_asyncio (never blocking the loop)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.model import GROUP, KIND, PLURAL, VERSION
from controller.redaction import redact

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
COMPONENT = "chaosdemo-controller"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _event_time(event: Any) -> float:
    moment = event.last_timestamp or event.event_time or event.first_timestamp
    return moment.timestamp() if moment is not None else 0.0


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.apps = client.AppsV1Api(api)

    # -- pods --------------------------------------------------------------------------------
    async def list_pods(self, namespace: str, selector: str) -> list[Any]:
        result = await self.core.list_namespaced_pod(namespace, label_selector=selector)
        return list(result.items)

    async def get_pod(self, namespace: str, name: str) -> Any | None:
        try:
            return await self.core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's data, decoded (None: no such Secret). The values are never logged."""
        try:
            secret = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    async def tidb_cluster(self, namespace: str, name: str) -> dict[str, Any] | None:
        """tidb-operator's TidbCluster (pingcap.com/v1alpha1); None: no such object, or no such
        kind in this cluster."""
        return await self.get_custom("pingcap.com", "v1alpha1", namespace, "tidbclusters", name)

    async def get_custom(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any] | None:
        """Another operator's object; None: no such object, or no such kind in this cluster."""
        try:
            found = await self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found)

    async def merge_patch_custom(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> None:
        """A merge patch of another operator's object (a resourceVersion in ``body`` makes it
        conditional: 409 when the object changed since). ``dry_run``: checked, not written."""
        extra: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        await self.custom.patch_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            name,
            body,
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
            **extra,
        )

    async def delete_pod(self, namespace: str, name: str, uid: str, grace_seconds: int) -> str:
        """Delete exactly this pod (uid precondition). Returns 'deleted', 'gone' (404: no pod of
        that name) or 'changed' (409: the name belongs to another pod, a replacement with a new
        uid). In neither of the last two is anything touched; whether the pod we chose went by
        our hand (an earlier attempt) or another's is the caller's to know."""
        body = client.V1DeleteOptions(
            grace_period_seconds=grace_seconds, preconditions=client.V1Preconditions(uid=uid)
        )
        try:
            await self.core.delete_namespaced_pod(name, namespace, body=body)
            return "deleted"
        except ApiException as exc:
            if exc.status == 404:
                return "gone"
            if exc.status == 409:
                return "changed"
            raise

    # -- network policies (network-partition) ---------------------------------------------------
    async def daemonset_names(self, namespace: str) -> list[str]:
        result = await self.apps.list_namespaced_daemon_set(namespace)
        return [d.metadata.name for d in result.items]

    async def create_network_policy(self, namespace: str, manifest: dict[str, Any]) -> bool:
        """Create it; False when one of that name exists already."""
        try:
            await self.networking.create_namespaced_network_policy(namespace, manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def get_network_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = await self.networking.read_namespaced_network_policy(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.api.sanitize_for_serialization(found))

    async def delete_network_policy(self, namespace: str, name: str, uid: str) -> bool:
        """Delete that one object (its uid as precondition); False when it is gone already."""
        try:
            await self.networking.delete_namespaced_network_policy(
                name, namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
            )
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or another object has the name now: not ours
                return False
            raise
        return True

    async def patch_pod_if(self, namespace: str, name: str, ops: list[dict[str, Any]]) -> str:
        """Apply a JSON patch whose ``test`` operations the API server checks in the same write.
        Returns 'patched', 'unchanged' (a test failed: the pod is not as the patch expects) or
        'gone' (404)."""
        try:
            await self.core.patch_namespaced_pod(
                name,
                namespace,
                ops,
                _content_type=JSON_PATCH,  # type: ignore[call-arg]
            )
            return "patched"
        except ApiException as exc:
            if exc.status == 404:
                return "gone"
            if exc.status == 422:  # a test operation failed, or the path it names is not there
                return "unchanged"
            raise

    async def create_pod(self, namespace: str, manifest: dict[str, Any]) -> None:
        try:
            await self.core.create_namespaced_pod(namespace, manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:  # already recreated (by us before a restart, or by someone)
                raise

    async def create_job(self, namespace: str, manifest: dict[str, Any]) -> None:
        """Create a Job (the demo's client load); one that exists already is left as it is."""
        try:
            await self.batch.create_namespaced_job(namespace, manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise

    async def delete_job(self, namespace: str, name: str) -> None:
        try:
            await self.batch.delete_namespaced_job(
                name, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def namespace_annotations(self, namespace: str) -> dict[str, str] | None:
        try:
            ns = await self.core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(ns.metadata.annotations or {})

    async def events_for(self, namespace: str, limit: int = 50) -> list[Any]:
        result = await self.core.list_namespaced_event(namespace, limit=limit)
        return list(result.items)

    async def events_about(self, namespace: str, kind: str, name: str) -> list[Any]:
        """Every Event about one object (the API server filters), newest first."""
        result = await self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
        )
        return sorted(result.items, key=_event_time, reverse=True)

    # -- ChaosDemo objects -------------------------------------------------------------------------
    async def list_chaosdemos(self) -> list[dict[str, Any]]:
        result = await self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        return list(result.get("items", []))

    async def get_chaosdemo(
        self, namespace: str, name: str, *, plural: str = PLURAL
    ) -> dict[str, Any] | None:
        """A ChaosDemo (or, with ``plural``, a ChaosDemoSchedule) as the API server has it now."""
        try:
            return dict(
                await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list_chaosdemos_in(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        result = await self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=selector
        )
        return list(result.get("items", []))

    async def create_chaosdemo(
        self, namespace: str, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create; with ``dry_run`` the API server validates it (CRD schema, CEL rules) and
        stores nothing."""
        if dry_run:
            created = await self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
            )
        else:
            created = await self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body
            )
        return dict(created)

    async def delete_chaosdemo(self, namespace: str, name: str) -> None:
        try:
            await self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def patch_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        plural: str = PLURAL,
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status. With ``resource_version`` the API server applies it only if
        the object is still at that version (else 409 Conflict): a write that proves nothing,
        not even a deletion or an edit of the spec, happened since the object was read."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return dict(
            await self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                body,
                _content_type=MERGE_PATCH,  # type: ignore[call-arg]
            )
        )

    async def emit_event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event on our object (a ChaosDemo or a schedule), as `kubectl describe` shows
        them. Best effort."""
        meta = obj["metadata"]
        now = _now()
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=obj.get("apiVersion", f"{GROUP}/{VERSION}"),
                kind=obj.get("kind", KIND),
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
            ),
            reason=reason,
            message=redact(message)[:1024],
            type=event_type,
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
        )
        try:
            await self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as exc:  # an Event is never worth failing a drill over
            log.warning("could not post event %s on %s: %s", reason, meta["name"], exc.status)

    # -- the per-target lock (a Lease) ------------------------------------------------------------
    async def read_lease(self, namespace: str, name: str) -> Any | None:
        try:
            return await self.coordination.read_namespaced_lease(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def create_lease(self, namespace: str, name: str, holder: str, duration_seconds: int) -> bool:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace, labels={"app.kubernetes.io/managed-by": COMPONENT}
            ),
            spec=client.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=duration_seconds,
                acquire_time=_now(),
                renew_time=_now(),
            ),
        )
        try:
            await self.coordination.create_namespaced_lease(namespace, lease)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    async def delete_lease(self, namespace: str, name: str, resource_version: str | None = None) -> None:
        body = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=resource_version)
            if resource_version
            else None
        )
        try:
            await self.coordination.delete_namespaced_lease(name, namespace, body=body)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
