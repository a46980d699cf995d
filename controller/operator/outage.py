"""store-outage: the TiKV process stopped while its pod stays, then started again.

The TiKV container's image is swapped for a pause image (Kubernetes lets a running pod's container
image change; the kubelet restarts the container with it), and after ``durationSeconds`` swapped
back, as Chaos Mesh's PodChaos ``pod-failure`` does. The store is gone for as long as PD needs to
mark it Disconnected, then Down, and rebuild its replicas elsewhere.

Both swaps are JSON patches whose ``test`` operations the API server checks in the same write: the
victim's uid, the container's name and the image the swap expects to find. So each swap happens at
most once however often it is tried (again after a crash, on abort, in the finalizer), and never
to a pod that is not the victim or to an image someone else has since set.

Under tidb-operator v2, which re-applies the pod's spec itself, the swaps happen inside a pause of
the operator's reconciliation (``operator_pause``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from controller.images import is_pause_image
from controller.operator.kube import Kube
from controller.operator.state import Victim

TIKV_CONTAINER = "tikv"

SwapOutcome = Literal["swapped", "already", "gone", "changed"]


def tikv_container(containers: list[Any]) -> tuple[int, str, str] | None:
    """(index, name, image) of the container that runs TiKV: the one named ``tikv``, else the
    pod's only container. None when neither says which it is."""
    named = [(i, c) for i, c in enumerate(containers) if c.name == TIKV_CONTAINER]
    if not named and len(containers) == 1:
        named = [(0, containers[0])]
    if len(named) != 1:
        return None
    index, container = named[0]
    return index, container.name, container.image


def swap_ops(uid: str, index: int, name: str, expected: str, image: str) -> list[dict[str, Any]]:
    """A JSON patch that sets the container's image only if the pod is still the victim and the
    container still runs ``expected``."""
    path = f"/spec/containers/{index}"
    return [
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": f"{path}/name", "value": name},
        {"op": "test", "path": f"{path}/image", "value": expected},
        {"op": "replace", "path": f"{path}/image", "value": image},
    ]


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


def refusal(pod: Any, pause_image: str) -> Refusal | None:
    """Why this pod cannot have its store stopped by an image swap, if it cannot."""
    found = tikv_container(pod.spec.containers or [])
    name = pod.metadata.name
    if found is None:
        return Refusal(
            "NoTikvContainer",
            f"pod {name} has no container named {TIKV_CONTAINER!r} and more than one container",
        )
    if is_pause_image(found[2]):
        return Refusal(
            "AlreadyPaused", f"container {found[1]} of pod {name} already runs a pause image ({found[2]})"
        )
    if not is_pause_image(pause_image):
        return Refusal("NotAPauseImage", f"spec.fault.pauseImage {pause_image!r} is not a pause image")
    return None


def victim_fields(pod: Any, pause_image: str) -> dict[str, Any]:
    """What the victim record keeps for the swap back (by field name), taken from the pod."""
    found = tikv_container(pod.spec.containers or [])
    assert found is not None, "refusal() first"
    index, name, image = found
    return {"container_index": index, "container": name, "original_image": image, "pause_image": pause_image}


@dataclass(frozen=True)
class Swap:
    outcome: SwapOutcome
    detail: str


async def swap_image(
    kube: Kube, namespace: str, pod: str, uid: str, index: int, name: str, *, expected: str, image: str
) -> Swap:
    """Swap the container's image from ``expected`` to ``image``.

    swapped: this call did it. already: the container runs ``image`` (an earlier try did it).
    gone: the victim pod no longer exists (a replacement runs its template's image).
    changed: the container runs something else; someone else set it, and it is left alone.
    """
    result = await kube.patch_pod_if(namespace, pod, swap_ops(uid, index, name, expected, image))
    if result == "patched":
        return Swap("swapped", f"container {name} of {pod}: {expected} -> {image}")
    current = await kube.get_pod(namespace, pod)
    if current is None or current.metadata.uid != uid:
        return Swap("gone", f"pod {pod} (uid {uid[:8]}) is gone")
    containers = current.spec.containers or []
    now = containers[index].image if index < len(containers) and containers[index].name == name else None
    if now == image:
        return Swap("already", f"container {name} of {pod} already runs {image}")
    return Swap(
        "changed", f"container {name} of {pod} runs {now!r}, neither {expected} nor {image}; left alone"
    )


async def swap_victim(kube: Kube, victim: Victim, *, back: bool) -> Swap:
    """The victim's swap out to its pause image, or (``back``) to its original image."""
    if not (victim.original_image and victim.pause_image and victim.container):
        raise ValueError(f"pod {victim.pod} is not a store-outage victim")
    expected, image = (victim.original_image, victim.pause_image)
    if back:
        expected, image = image, expected
    return await swap_image(
        kube,
        victim.namespace,
        victim.pod,
        victim.uid,
        victim.container_index or 0,
        victim.container,
        expected=expected,
        image=image,
    )
