"""One drill at a time per target namespace: a Lease whose holder is the drill (namespace, name,
uid) and whose duration is the longest the holder's run may last.

Creating the Lease is atomic in the API server, so two drills (or two controller replicas)
racing for one target cannot both win. A Lease whose holder is gone, finished, or past its
duration is stale and is taken over. The run releases it in one place: ``drill.end_run``.
"""

from __future__ import annotations

import time
from typing import Any

from controller.operator.kube import Kube
from controller.operator.model import TERMINAL_PHASES
from controller.timefmt import parse_optional_rfc3339

LEASE_NAME = "chaosdemo-target-lock"


def holder_id(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}/{meta['uid']}"


async def acquire(
    kube: Kube, target_namespace: str, obj: dict[str, Any], duration_seconds: int
) -> tuple[bool, str]:
    """Returns (acquired, current holder)."""
    me = holder_id(obj)
    for _ in range(3):
        lease = await kube.read_lease(target_namespace, LEASE_NAME)
        if lease is None:
            if await kube.create_lease(target_namespace, LEASE_NAME, me, duration_seconds):
                return True, me
            continue
        holder = lease.spec.holder_identity or ""
        if holder == me:
            return True, me
        if not _expired(lease, time.time()) and await _holder_is_active(kube, holder):
            return False, holder
        await kube.delete_lease(target_namespace, LEASE_NAME, lease.metadata.resource_version)
    return False, "unknown"


async def release(kube: Kube, target_namespace: str, obj: dict[str, Any]) -> None:
    lease = await kube.read_lease(target_namespace, LEASE_NAME)
    if lease is not None and lease.spec.holder_identity == holder_id(obj):
        await kube.delete_lease(target_namespace, LEASE_NAME, lease.metadata.resource_version)


def _expired(lease: Any, now: float) -> bool:
    acquired, duration = lease.spec.acquire_time, lease.spec.lease_duration_seconds
    if acquired is None or not duration:
        return False
    return acquired.timestamp() + duration < now


async def _holder_is_active(kube: Kube, holder: str) -> bool:
    try:
        namespace, name, uid = holder.split("/")
    except ValueError:
        return False
    # One GET by name: a waiting drill asks this every step, so it must not list every drill.
    item = await kube.get_chaosdemo(namespace, name)
    if item is None or item["metadata"]["uid"] != uid:
        return False
    return (item.get("status") or {}).get("phase") not in TERMINAL_PHASES


async def recently_finished_elsewhere(
    kube: Kube, target_namespace: str, obj: dict[str, Any], window: float
) -> bool:
    """Did another drill on this target kill a pod and finish within ``window`` seconds? Its incident may still
    be settling (a ticket open, a store coming back): a drill right behind it should wait, not fail."""
    now = time.time()
    for item in await kube.list_chaosdemos():
        meta, status = item["metadata"], item.get("status") or {}
        if meta["uid"] == obj["metadata"]["uid"]:
            continue
        target = ((item.get("spec") or {}).get("target") or {}).get("namespace") or meta["namespace"]
        timeline = status.get("timeline") or {}
        completed = parse_optional_rfc3339(timeline.get("completedAt"))
        # Only a drill that killed something leaves an incident behind to settle.
        killed = timeline.get("injectedAt") is not None
        if target == target_namespace and killed and completed is not None and now - completed < window:
            return True
    return False
