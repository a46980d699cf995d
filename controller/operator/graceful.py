"""When a pod deleted with a grace period really stopped.

A delete with ``gracePeriodSeconds > 0`` returns at once with the pod still there: the kubelet
sends TiKV SIGTERM, TiKV shuts down (serving until it exits), the kubelet records the container's
``terminated.finishedAt`` and only then removes the pod; at ``deletionTimestamp`` it would have
sent SIGKILL. The fault starts when the container stopped, so that is the kill's moment: the
kubelet's own timestamp (whole seconds on a real kubelet), narrowed by when the delete returned
and when the watch delivered the change. A watch, not polling: the moment is the event's own,
not when the controller happened to look.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import watch

from controller.operator.kube import Kube
from controller.operator.outage import tikv_container

log = logging.getLogger(__name__)

# Past the SIGKILL deadline the kubelet has stopped the container whatever TiKV did; a kubelet
# that says nothing for this long after it is unreachable (the node is gone, say).
AFTER_DEADLINE_SECONDS = 10.0
FINISHED_AT_RESOLUTION = 1.0


@dataclass(frozen=True)
class ContainerStop:
    at: float  # when the container stopped (the fault's start)
    how: str  # what says so, for the Event's message


def _finished_at(pod: Any) -> float | None:
    """The TiKV container's ``state.terminated.finishedAt``, if the kubelet wrote it."""
    spec_containers = pod.spec.containers if pod.spec else []
    found = tikv_container(spec_containers or [])
    name = found[1] if found else None
    for status in (pod.status.container_statuses if pod.status else None) or []:
        if name is not None and status.name != name:
            continue
        terminated = status.state.terminated if status.state else None
        if terminated is not None and terminated.finished_at is not None:
            return float(terminated.finished_at.timestamp())
    return None


def _stop_moment(finished: float, returned: float, seen: float, *, live: bool) -> float:
    """The container stopped within the second ``finishedAt`` names (a kubelet writes whole
    seconds), not before our delete returned, and not after the watch delivered it. A report
    delivered live within that second makes its arrival the tighter bound (a watch delivers in
    milliseconds); otherwise the middle of what the bounds allow."""
    lo, hi = max(returned, finished), min(seen, finished + FINISHED_AT_RESOLUTION)
    if lo > hi:
        return seen  # the clocks disagree: our own sample
    return hi if live and seen <= finished + FINISHED_AT_RESOLUTION else (lo + hi) / 2


def _sigkill_deadline(pod: Any) -> float | None:
    deletion = pod.metadata.deletion_timestamp if pod.metadata else None
    return float(deletion.timestamp()) if deletion is not None else None


async def container_stopped(
    kube: Kube, namespace: str, name: str, uid: str, deleted_at: float
) -> ContainerStop:
    """Wait for the deleted pod's TiKV container to stop, and say when it did.

    ``deleted_at``: when our delete returned (the container ran until at least then, as far as
    the API server had told anyone). Ends when the kubelet records the container terminated, or
    the pod (that uid) is gone; a kubelet silent past the SIGKILL deadline leaves that deadline
    as the moment, said so in ``how``."""
    pod = await kube.get_pod(namespace, name)
    if pod is None or pod.metadata.uid != uid:
        now = time.time()
        return ContainerStop((deleted_at + now) / 2, "pod gone")
    finished = _finished_at(pod)
    if finished is not None:
        # Already on record when we looked: our look bounds it, but is not its moment.
        return ContainerStop(_stop_moment(finished, deleted_at, time.time(), live=False), "finishedAt")
    deadline = _sigkill_deadline(pod) or deleted_at
    stream = watch.Watch()
    timeout = max(1.0, deadline + AFTER_DEADLINE_SECONDS - time.time())
    try:
        async with asyncio.timeout(timeout):
            async for event in stream.stream(
                kube.core.list_namespaced_pod,
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=pod.metadata.resource_version,
                timeout_seconds=int(timeout) + 1,
            ):
                seen = time.time()
                obj = event["object"]
                if getattr(obj, "metadata", None) is None or obj.metadata.uid != uid:
                    continue
                finished = _finished_at(obj)
                if finished is not None:
                    return ContainerStop(_stop_moment(finished, deleted_at, seen, live=True), "finishedAt")
                if event["type"] == "DELETED":
                    # Removed without a terminated state on record: the removal is all we know.
                    return ContainerStop(seen, "pod removed")
    except TimeoutError:
        pass
    finally:
        stream.stop()
    log.warning("pod %s/%s: no word of its container stopping; taking the SIGKILL deadline", namespace, name)
    return ContainerStop(deadline, "SIGKILL deadline (the kubelet said nothing)")
