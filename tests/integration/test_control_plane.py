"""The foundation: a real API server with RBAC, the real StatefulSet controller, kwok nodes."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from controller.sandbox.controlplane import ControlPlane

pytestmark = pytest.mark.integration


def _new_namespace(cp: ControlPlane) -> str:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    cp.kubectl("create", "namespace", ns)
    return ns


def _pods(cp: ControlPlane, ns: str) -> list[dict]:
    return json.loads(cp.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]


def _ready(pod: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


def _wait(predicate, timeout: float = 60, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


STATEFULSET = """
apiVersion: v1
kind: Service
metadata: {name: tikv-peer}
spec:
  clusterIP: None
  selector: {app.kubernetes.io/component: tikv}
  ports: [{name: peer, port: 20160}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: tikv}
spec:
  serviceName: tikv-peer
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app.kubernetes.io/component: tikv}}
  template:
    metadata: {labels: {app.kubernetes.io/component: tikv, app.kubernetes.io/name: tikv}}
    spec:
      containers: [{name: tikv, image: pingcap/tikv:v8.5.0}]
"""


def test_kwok_nodes_are_ready(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("get", "nodes", "--no-headers").stdout
    lines = [line.split() for line in out.strip().splitlines()]
    assert len(lines) == 3
    assert all(cols[1] == "Ready" for cols in lines), out


def test_rbac_is_enforced(control_plane: ControlPlane) -> None:
    # A service account with no role bindings must be forbidden: proves RBAC authorizes.
    ns = _new_namespace(control_plane)
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", ns)
    out = control_plane.kubectl(
        "auth", "can-i", "list", "pods", "-n", ns, f"--as=system:serviceaccount:{ns}:nobody", check=False
    )
    assert out.stdout.strip() == "no"
    assert control_plane.kubectl("auth", "can-i", "list", "pods", "-n", ns).stdout.strip() == "yes"


def test_statefulset_recreates_a_killed_pod(control_plane: ControlPlane) -> None:
    cp = control_plane
    ns = _new_namespace(cp)
    cp.kubectl("apply", "-n", ns, "-f", "-", input=STATEFULSET)
    _wait(lambda: sum(_ready(p) for p in _pods(cp, ns)) == 3, 90, "3 Ready tikv pods")

    victim = next(p for p in _pods(cp, ns) if p["metadata"]["name"] == "tikv-1")
    old_uid = victim["metadata"]["uid"]
    cp.kubectl("delete", "pod", "tikv-1", "-n", ns, "--grace-period=0", "--force", "--wait=false")

    def replaced() -> bool:
        pods = {p["metadata"]["name"]: p for p in _pods(cp, ns)}
        new = pods.get("tikv-1")
        return new is not None and new["metadata"]["uid"] != old_uid and _ready(new)

    _wait(replaced, 90, "tikv-1 recreated with a new uid and Ready")
    assert len(_pods(cp, ns)) == 3
    replacement = next(p for p in _pods(cp, ns) if p["metadata"]["name"] == "tikv-1")["metadata"]["uid"]
    time.sleep(3)  # the replacement must stay: nothing deletes it by name afterwards
    assert (
        next(p for p in _pods(cp, ns) if p["metadata"]["name"] == "tikv-1")["metadata"]["uid"] == replacement
    )

    # A graceful delete (what `kubectl delete pod` does) completes too: kwok plays the kubelet.
    cp.kubectl("delete", "pod", "tikv-0", "-n", ns, "--grace-period=1", "--wait=true", "--timeout=60s")
    _wait(lambda: sum(_ready(p) for p in _pods(cp, ns)) == 3, 90, "tikv-0 back after a graceful delete")


def test_crd_columns_explain_and_validation(control_plane: ControlPlane) -> None:
    cp = control_plane
    ns = _new_namespace(cp)
    # With no objects kubectl prints "No resources found"; create one to see the header.
    cp.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input="""
apiVersion: chaos.operator.dev/v1alpha1
kind: ChaosDemo
metadata: {name: valid}
spec: {safety: {dryRun: true}}
""",
    )
    header = cp.kubectl("get", "cdemo", "-n", ns).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "VERDICT", "FAULT", "VICTIM", "TTD", "TTR", "CAUSE", "AGE"]

    # Defaults are applied by the API server.
    obj = json.loads(cp.kubectl("get", "chaosdemo", "valid", "-n", ns, "-o", "json").stdout)
    assert obj["spec"]["fault"] == {"action": "pod-kill", "gracePeriodSeconds": 0}
    assert obj["spec"]["detection"]["timeoutSeconds"] == 120

    explain = cp.kubectl("explain", "chaosdemo.spec").stdout
    assert "kills one TiKV pod" in " ".join(cp.kubectl("explain", "chaosdemo").stdout.split())
    for field in ("target", "fault", "detection", "diagnosis", "recovery", "safety", "abort"):
        assert field in explain
    assert "detection SLO" in " ".join(cp.kubectl("explain", "chaosdemo.spec.detection").stdout.split())

    bad = cp.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        check=False,
        input="""
apiVersion: chaos.operator.dev/v1alpha1
kind: ChaosDemo
metadata: {name: negative}
spec: {detection: {timeoutSeconds: -5}}
""",
    )
    assert bad.returncode != 0
    assert (
        "spec.detection.timeoutSeconds" in bad.stderr and "should be greater than or equal to 1" in bad.stderr
    )

    empty_selector = cp.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        check=False,
        input="""
apiVersion: chaos.operator.dev/v1alpha1
kind: ChaosDemo
metadata: {name: everything}
spec: {target: {selector: {matchLabels: {}}}}
""",
    )
    assert empty_selector.returncode != 0
    assert "selector must not be empty" in empty_selector.stderr

    # A URL only means something for a server source: the API server refuses it on the others.
    page_url = cp.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        check=False,
        input="""
apiVersion: chaos.operator.dev/v1alpha1
kind: ChaosDemo
metadata: {name: page-with-url}
spec: {detection: {sources: [{type: alertmanager-notification, url: "http://elsewhere:9093"}]}}
""",
    )
    assert page_url.returncode != 0 and "url is for a prometheus or alertmanager source" in page_url.stderr
