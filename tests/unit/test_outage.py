"""store-outage's pure parts: which container runs TiKV, what a pause image is, the guarded swap."""

from __future__ import annotations

from types import SimpleNamespace

from controller.operator.operator_pause import PAUSED_FOR, _marked_by, _marker, tikv_instance
from controller.operator.outage import is_pause_image, refusal, swap_ops, tikv_container


def _pod(*containers: tuple[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(name="tikv-0"),
        spec=SimpleNamespace(containers=[SimpleNamespace(name=n, image=i) for n, i in containers]),
    )


def test_pause_images_by_repository_name() -> None:
    for image in (
        "registry.k8s.io/pause:3.10",
        "k8s.gcr.io/pause",
        "mirror.local:5000/k8s/pause@sha256:abc",
        "pause",
    ):
        assert is_pause_image(image), image
    for image in ("pingcap/tikv:v8.5.0", "busybox:1.36", "example.com/pause-not/tikv:1", "pauser:1"):
        assert not is_pause_image(image), image


def test_the_tikv_container_is_named_tikv_or_the_only_one() -> None:
    assert tikv_container(_pod(("sidecar", "x"), ("tikv", "pingcap/tikv:v8.5.0")).spec.containers) == (
        1,
        "tikv",
        "pingcap/tikv:v8.5.0",
    )
    assert tikv_container(_pod(("store", "pingcap/tikv:v8.5.0")).spec.containers) == (
        0,
        "store",
        "pingcap/tikv:v8.5.0",
    )
    assert tikv_container(_pod(("a", "x"), ("b", "y")).spec.containers) is None


def test_refusals_before_anything_is_touched() -> None:
    pause = "registry.k8s.io/pause:3.10"
    assert refusal(_pod(("tikv", "pingcap/tikv:v8.5.0")), pause) is None
    assert refusal(_pod(("a", "x"), ("b", "y")), pause).reason == "NoTikvContainer"  # type: ignore[union-attr]
    assert refusal(_pod(("tikv", pause)), pause).reason == "AlreadyPaused"  # type: ignore[union-attr]
    assert refusal(_pod(("tikv", "pingcap/tikv:v8.5.0")), "busybox").reason == "NotAPauseImage"  # type: ignore[union-attr]


def test_a_swap_tests_the_pod_the_container_and_the_image_it_replaces() -> None:
    ops = swap_ops("uid-1", 1, "tikv", "pingcap/tikv:v8.5.0", "registry.k8s.io/pause:3.10")
    assert ops[:3] == [
        {"op": "test", "path": "/metadata/uid", "value": "uid-1"},
        {"op": "test", "path": "/spec/containers/1/name", "value": "tikv"},
        {"op": "test", "path": "/spec/containers/1/image", "value": "pingcap/tikv:v8.5.0"},
    ]
    assert ops[3] == {
        "op": "replace",
        "path": "/spec/containers/1/image",
        "value": "registry.k8s.io/pause:3.10",
    }


def test_the_operator_whose_pause_a_v2_outage_needs() -> None:
    """tidb-operator v2 owns TiKV pods through its TiKV instance and re-applies the pod's spec on
    its next change, so a store-outage there pauses that instance's Cluster; a StatefulSet (v1,
    the plain manifests) does not touch a running pod's image, and an owner that is not the
    pod's controller does not reconcile it."""

    def owned(api_version: str, kind: str, controller: bool = True) -> SimpleNamespace:
        pod = _pod(("tikv", "pingcap/tikv:v8.5.0"))
        pod.metadata.owner_references = [
            SimpleNamespace(api_version=api_version, kind=kind, name="tikv-x7k2p9", controller=controller)
        ]
        return pod

    pause = "registry.k8s.io/pause:3.10"
    v2_pod = owned("core.pingcap.com/v1alpha1", "TiKV")
    assert tikv_instance(v2_pod) == "tikv-x7k2p9" and refusal(v2_pod, pause) is None
    assert tikv_instance(owned("apps/v1", "StatefulSet")) is None
    assert tikv_instance(owned("core.pingcap.com/v1alpha1", "TiKV", controller=False)) is None
    assert tikv_instance(owned("core.pingcap.com/v1alpha1", "PD")) is None


def test_only_this_drills_pause_is_undone() -> None:
    """The pause marker names the drill and what spec.paused was; another drill's marker, a
    hand-written one and none at all are not this drill's pause."""
    marked = {"metadata": {"annotations": {PAUSED_FOR: _marker("uid-1", False)}}}
    assert _marked_by(marked, "uid-1") == (True, False)
    assert _marked_by({"metadata": {"annotations": {PAUSED_FOR: _marker("uid-1", None)}}}, "uid-1") == (
        True,
        None,
    )
    assert _marked_by(marked, "uid-2") == (False, None)
    assert _marked_by({"metadata": {"annotations": {PAUSED_FOR: "by hand"}}}, "uid-1") == (False, None)
    assert _marked_by({"metadata": {}}, "uid-1") == (False, None)
