"""store-outage under tidb-operator v2: its reconciliation paused for the outage, then resumed.

tidb-operator v2 owns each TiKV pod through a TiKV instance (``core.pingcap.com``) and re-applies
the pod's spec on its next reconcile, so a swapped image would be put back within seconds. Its
``Cluster`` has ``spec.paused``, which every v2 controller checks first and then leaves the
cluster's objects alone: the pause users themselves set to change a pod by hand. A store-outage
on such a pod sets it for the outage and puts it back after the image is back.

Both writes carry the Cluster's resourceVersion as a precondition, and the pause records who set
it in an annotation (with the value ``spec.paused`` had before), so the resume undoes only a pause
this drill made, exactly once, however often it is tried; a Cluster its users had paused already
is left paused and untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.kube import Kube

GROUP, VERSION = "core.pingcap.com", "v1alpha1"
PAUSED_FOR = "chaosdemo.io/paused-for-drill"
# A write that lost a race with someone else's is tried again on a fresh read, this often.
ATTEMPTS = 5

PauseOutcome = Literal["paused", "already", "paused-by-others", "gone"]
ResumeOutcome = Literal["resumed", "not-ours", "gone"]


@dataclass(frozen=True)
class PauseRefusal:
    reason: str
    message: str


def tikv_instance(pod: Any) -> str | None:
    """The tidb-operator v2 TiKV instance that controls this pod, if one does."""
    for owner in getattr(pod.metadata, "owner_references", None) or []:
        group = str(owner.api_version).split("/", 1)[0]
        if owner.controller and group == GROUP and owner.kind == "TiKV":
            return str(owner.name)
    return None


async def cluster_to_pause(kube: Kube, namespace: str, pod: Any) -> str | PauseRefusal | None:
    """The v2 Cluster whose reconciliation a store-outage of ``pod`` must pause (None: the pod
    is not tidb-operator v2's), or why it cannot be paused. Checked before anything is touched:
    the instance names its Cluster, and a dry-run write proves the controller may pause it."""
    instance = tikv_instance(pod)
    if instance is None:
        return None
    where = f"tidb-operator v2's TiKV {namespace}/{instance} (owner of pod {pod.metadata.name})"
    try:
        tikv = await kube.get_custom(GROUP, VERSION, namespace, "tikvs", instance)
        if tikv is None:
            return PauseRefusal("OperatorInstanceNotFound", f"{where} does not exist")
        cluster = str(((tikv.get("spec") or {}).get("cluster") or {}).get("name") or "")
        if not cluster:
            return PauseRefusal("OperatorInstanceNotFound", f"{where} names no Cluster (spec.cluster.name)")
        found = await kube.get_custom(GROUP, VERSION, namespace, "clusters", cluster)
        if found is None:
            return PauseRefusal(
                "OperatorClusterNotFound", f"Cluster {namespace}/{cluster} of {where} does not exist"
            )
        await kube.merge_patch_custom(
            GROUP, VERSION, namespace, "clusters", cluster, {"spec": {"paused": True}}, dry_run=True
        )
    except ApiException as exc:
        if exc.status == 403:
            return PauseRefusal(
                "OperatorClusterForbidden",
                f"the controller may not pause tidb-operator v2's Cluster for {where}: a store-outage "
                "there needs get on tikvs and get, patch on clusters (core.pingcap.com)",
            )
        raise
    return cluster


def _marker(drill_uid: str, paused_before: Any) -> str:
    return json.dumps({"drill": drill_uid, "pausedBefore": paused_before}, separators=(",", ":"))


def _marked_by(cluster: dict[str, Any], drill_uid: str) -> tuple[bool, Any]:
    """Did this drill pause the Cluster, and what was ``spec.paused`` before (None: unset)?"""
    raw = ((cluster.get("metadata") or {}).get("annotations") or {}).get(PAUSED_FOR)
    try:
        marker = json.loads(raw) if raw else None
    except ValueError:
        return False, None
    if not isinstance(marker, dict) or marker.get("drill") != drill_uid:
        return False, None
    return True, marker.get("pausedBefore")


async def pause(kube: Kube, namespace: str, cluster: str, drill_uid: str) -> PauseOutcome:
    """Pause the Cluster's reconciliation for this drill. paused: this call did. already: an
    earlier try of this drill did. paused-by-others: it was paused already, not by us (left as
    it is, and the resume will not touch it). gone: no such Cluster."""
    for _ in range(ATTEMPTS):
        found = await kube.get_custom(GROUP, VERSION, namespace, "clusters", cluster)
        if found is None:
            return "gone"
        ours, _ = _marked_by(found, drill_uid)
        if ours:
            return "already"
        spec = found.get("spec") or {}
        if spec.get("paused") is True:
            return "paused-by-others"
        body = {
            "metadata": {
                "resourceVersion": found["metadata"]["resourceVersion"],
                "annotations": {PAUSED_FOR: _marker(drill_uid, spec.get("paused"))},
            },
            "spec": {"paused": True},
        }
        if await _patch_if_unchanged(kube, namespace, cluster, body):
            return "paused"
    raise RuntimeError(f"Cluster {namespace}/{cluster} kept changing; not paused after {ATTEMPTS} tries")


async def resume(kube: Kube, namespace: str, cluster: str, drill_uid: str) -> ResumeOutcome:
    """Undo this drill's pause: ``spec.paused`` back to what it was, the annotation removed.
    not-ours: no pause of this drill is on it (never made, already undone, or someone else's)."""
    for _ in range(ATTEMPTS):
        found = await kube.get_custom(GROUP, VERSION, namespace, "clusters", cluster)
        if found is None:
            return "gone"
        ours, paused_before = _marked_by(found, drill_uid)
        if not ours:
            return "not-ours"
        body = {
            "metadata": {
                "resourceVersion": found["metadata"]["resourceVersion"],
                "annotations": {PAUSED_FOR: None},
            },
            "spec": {"paused": paused_before},  # None removes it: unset, as it was
        }
        if await _patch_if_unchanged(kube, namespace, cluster, body):
            return "resumed"
    raise RuntimeError(f"Cluster {namespace}/{cluster} kept changing; not resumed after {ATTEMPTS} tries")


async def _patch_if_unchanged(kube: Kube, namespace: str, cluster: str, body: dict[str, Any]) -> bool:
    """The merge patch, written only if the Cluster is still at the resourceVersion it names."""
    try:
        await kube.merge_patch_custom(GROUP, VERSION, namespace, "clusters", cluster, body)
    except ApiException as exc:
        if exc.status in (404, 409):  # gone, or changed since the read: read again
            return False
        raise
    return True
