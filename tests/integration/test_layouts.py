"""Drills on the layout tidb-operator v1 creates, with TLS everywhere: StatefulSets basic-pd and
basic-tikv, pods basic-tikv-N with tidb-operator's labels, the peer services, PD's client port
over mutual TLS at its Service's name (basic-pd.<namespace>.svc:2379), Prometheus over HTTPS,
and TiKV started by a shell script (its container's command). A drill names the cluster
(target.tidbCluster: basic: selector, PD's address and client Secret derived from the
TidbCluster) or selects the pods as a user of such a cluster writes it
(app.kubernetes.io/instance: basic, component: tikv).

store-outage there: the pause image cannot run the start script, so the swapped container fails
to start and the pod goes not Ready (the sandbox's kwok does what the kubelet does); the store is
stopped all the same, and its recovery is timed from the pod's own Ready transition after the
image is back. Each figure is checked against the pods' own conditions and PD's view."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.operator.crashpoints import PAUSE_POINTS
from controller.sandbox.layouts import PD_IMAGE, TIKV_IMAGE
from controller.sandbox.tikv import pod_ready
from controller.timefmt import parse_rfc3339
from tests.support.drills import (
    DrillEnv,
    ImageHistory,
    PodFieldHistory,
    PodHistory,
    started_drill_env,
    wait_for,
    wait_stores_aged,
)

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
PAUSE = "registry.k8s.io/pause:3.10"
SELECTOR = {"app.kubernetes.io/instance": "basic", "app.kubernetes.io/component": "tikv"}
START_SCRIPT = ["/bin/sh", "/usr/local/bin/tikv_start_script.sh"]


def _pd(env: DrillEnv, path: str) -> Any:
    with urllib.request.urlopen(
        f"{env.cluster.pd_url}{path}", timeout=5, context=env.cluster.client_ssl()
    ) as r:
        return json.load(r)


def _pod(env: DrillEnv, name: str) -> dict[str, Any]:
    return dict(json.loads(env.kubectl("get", "pod", name, "-n", env.ns, "-o", "json").stdout))


def _ready_since(pod: dict[str, Any]) -> float:
    [ready] = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "True", pod["status"]
    return parse_rfc3339(ready["lastTransitionTime"])


class ReadyHistory(PodFieldHistory):
    """The pod's Ready condition as the API server delivered each change (a watch)."""

    def __init__(self, cluster: Any, pod: str) -> None:
        super().__init__(cluster, pod, '.status.conditions[?(@.type=="Ready")].status')

    def ready_again(self, uid: str, *, same_pod: bool) -> float:
        """When Ready=True arrived again: on a pod with a new uid (a replacement), or on the same
        pod after it was not Ready."""
        was_down = False
        for arrived, pod_uid, value in self.changes:
            if same_pod:
                if pod_uid != uid:
                    continue
                if value == "False":
                    was_down = True
                elif value == "True" and was_down:
                    return arrived
            elif pod_uid != uid and value == "True":
                return arrived
        raise AssertionError(f"{self.pod} was never Ready again: {self.changes}")


# podReadyAt is the midpoint of the window the pod's whole-second condition and the controller's
# looks leave (a look that saw it not Ready yet bounds it from when that look was asked): at most
# half of the condition's one-second resolution past the moment the watch saw.
HALF_RESOLUTION = 0.5


def _assert_ready_moment(t: dict[str, float], pod: dict[str, Any], delivered: float, what: Any) -> None:
    """podReadyAt lies between the pod's own Ready transition (whole seconds, the kubelet's
    clock) and the moment the API server delivered it to a watch (within the estimate's
    half-width): never before the pod said so, never later than anyone could see it."""
    assert _ready_since(pod) <= t["podReadyAt"] <= delivered + HALF_RESOLUTION, (
        t["podReadyAt"],
        delivered,
        what,
    )


def _drill(env: DrillEnv, name: str, fault: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    env.drill(
        name,
        {
            "target": target,
            "fault": fault,
            "detection": {"sources": [{"type": "tickets"}]},
            "diagnosis": {"provider": "offline"},
            "recovery": {"waitForLeadersSeconds": 0},
        },
    )
    return env.wait_phase(name, TERMINAL, timeout=150)


def test_three_faults_on_tidb_operator_v1_with_tls(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(layout="tidb-operator-v1", tls=True)
    names = [p["metadata"]["name"] for p in cluster.tikv_pods()]
    assert sorted(names) == ["basic-tikv-0", "basic-tikv-1", "basic-tikv-2"]
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        stores_before = {
            s["store"]["address"].split(".")[0]: s["store"]["id"]
            for s in _pd(env, "/pd/api/v1/stores")["stores"]
        }
        assert set(stores_before) == set(names), stores_before

        # A TidbCluster that is not there: refused before anything, saying so.
        env.drill("no-such-cluster", {"target": {"tidbCluster": "nope"}, "safety": {"dryRun": True}})
        missing = env.wait_phase("no-such-cluster", TERMINAL, timeout=60)

        # A store that started moments before a ticket reads as restarted: let the new cluster
        # age, as any cluster a drill runs on has.
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        # store-outage: the same pod, its image swapped and back, its command untouched.
        outage_uid = _pod(env, "basic-tikv-1")["metadata"]["uid"]
        with (
            ImageHistory(cluster, "basic-tikv-1") as images,
            ReadyHistory(cluster, "basic-tikv-1") as outage_ready,
        ):
            stopped = _drill(
                env,
                "outage",
                {"action": "store-outage", "durationSeconds": 20},
                {"tidbCluster": "basic", "pod": "basic-tikv-1"},
            )
        restored = _pod(env, "basic-tikv-1")
        store_after_outage = _pd(env, f"/pd/api/v1/store/{stores_before['basic-tikv-1']}")

        env.wait_no_open_tickets(60)
        # pod-kill: the StatefulSet basic-tikv brings the pod back; the store comes back with its id.
        kill_uid = _pod(env, "basic-tikv-0")["metadata"]["uid"]
        with PodHistory(cluster) as kills, ReadyHistory(cluster, "basic-tikv-0") as kill_ready:
            killed = _drill(
                env,
                "kill",
                {"action": "pod-kill"},
                {"selector": {"matchLabels": SELECTOR}, "pod": "basic-tikv-0"},
            )
        replacement = _pod(env, "basic-tikv-0")
        store_after_kill = _pd(env, f"/pd/api/v1/store/{stores_before['basic-tikv-0']}")

        # pd-leader-kill: the leader's pod basic-pd-N, as PD names the member.
        env.wait_no_open_tickets(60)
        leader_before = _pd(env, "/pd/api/v1/leader")["name"]
        leader_kill = _drill(env, "pd-leader", {"action": "pd-leader-kill"}, {"tidbCluster": "basic"})
        wait_for(lambda: _pd(env, "/pd/api/v1/leader")["name"] != leader_before, 30, "a new PD leader")
        pd_pod = _pod(env, leader_before)
    finally:
        env.stop()

    assert (missing["phase"], missing["reason"]) == ("Failed", "TidbClusterNotFound"), missing
    assert f"TidbCluster {env.ns}/nope" in missing["message"]

    # Derived from the TidbCluster: PD's Service over TLS, tidb-operator's client Secret.
    for derived in (stopped, leader_kill):
        assert derived["run"]["pdAddress"] == f"https://basic-pd.{env.ns}.svc:2379", derived["run"]
        assert derived["run"]["tlsSecret"] == f"{env.ns}/basic-cluster-client-secret"
        selector = derived["run"]["spec"]["target"]["selector"]["matchLabels"]
        assert selector == {**SELECTOR, "app.kubernetes.io/managed-by": "tidb-operator"}, selector

    # pod-kill
    assert (killed["phase"], killed["verdict"]) == ("Completed", "Pass"), killed
    assert (
        killed["victim"]["pod"] == "basic-tikv-0"
        and killed["victim"]["storeId"] == stores_before["basic-tikv-0"]
    )
    assert kills.replaced() == {"basic-tikv-0": 1}, kills.replaced()
    t = {k: parse_rfc3339(v) for k, v in killed["timeline"].items()}
    # The replacement's own Ready condition (whole seconds) is the pod-Ready moment.
    _assert_ready_moment(t, replacement, kill_ready.ready_again(kill_uid, same_pod=False), killed["timeline"])
    assert replacement["spec"]["containers"][0]["command"] == START_SCRIPT
    # PD: the same store id Up again, started after the kill; storeUpAt no sooner than its start.
    assert store_after_kill["store"]["state_name"] == "Up"
    started = parse_rfc3339(store_after_kill["status"]["start_ts"])
    assert t["injectedAt"] < started <= t["storeUpAt"] + 1.0 and t["recoveredAt"] >= t["storeUpAt"]

    # store-outage
    assert (stopped["phase"], stopped["verdict"]) == ("Completed", "Pass"), stopped
    assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], images.images
    assert restored["metadata"]["uid"] == outage_uid, "the same pod: nothing replaced"
    container = restored["spec"]["containers"][0]
    assert container["image"] == TIKV_IMAGE and container["command"] == START_SCRIPT
    # It could not start the script under the pause image, then started again with TiKV's.
    assert restored["status"]["containerStatuses"][0]["restartCount"] == 2, restored["status"]
    t = {k: parse_rfc3339(v) for k, v in stopped["timeline"].items()}
    assert t["restoredAt"] - t["injectedAt"] >= 20.0, stopped["timeline"]
    # Not Ready while stopped; Ready again after the swap back, at the pod's own moment (not the
    # swap's, as on a layout where the pause image runs).
    assert _ready_since(restored) >= t["restoredAt"] - 1.0, (restored["status"], stopped["timeline"])
    _assert_ready_moment(
        t, restored, outage_ready.ready_again(outage_uid, same_pod=True), stopped["timeline"]
    )
    assert store_after_outage["store"]["state_name"] == "Up"
    assert store_after_outage["store"]["id"] == stores_before["basic-tikv-1"], (
        "the store came back, not a new one"
    )
    assert t["recoveredAt"] >= max(t["podReadyAt"], t["storeUpAt"])
    assert stopped["diagnosis"]["matchesInjectedFault"] is True, json.dumps(stopped["diagnosis"], indent=1)

    # pd-leader-kill
    assert (leader_kill["phase"], leader_kill["verdict"]) == ("Completed", "Pass"), leader_kill
    assert leader_kill["victim"]["pod"] == leader_kill["victim"]["pdMember"] == leader_before
    assert leader_before.startswith("basic-pd-")
    assert (
        pd_pod["metadata"]["uid"] != leader_kill["victim"]["uid"]
        and pd_pod["spec"]["containers"][0]["image"] == PD_IMAGE
    )
    t = {k: parse_rfc3339(v) for k, v in leader_kill["timeline"].items()}
    assert t["injectedAt"] < t["pdLeaderElectedAt"] <= t["recoveredAt"], leader_kill["timeline"]


V2_SELECTOR = {"pingcap.com/cluster": "basic", "pingcap.com/component": "tikv"}


def _v2_cluster(env: DrillEnv) -> dict[str, Any]:
    out = env.kubectl("get", "clusters.core.pingcap.com", "basic", "-n", env.ns, "-o", "json").stdout
    return dict(json.loads(out))


def test_faults_on_tidb_operator_v2_where_the_operator_owns_the_pods(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """tidb-operator v2: no StatefulSet; each TiKV and PD instance's pod (tikv-tikv-<suffix>) is
    created by the operator, owned by the instance, recreated under its name, and its spec
    re-applied on any change (the emulator plays the operator). pod-kill and pd-leader-kill work
    as on a StatefulSet; store-outage pauses the Cluster's reconciliation (spec.paused) for the
    outage, since the operator would otherwise put TiKV's image back at once (shown at the end by
    swapping it by hand), and puts the Cluster back exactly as it was."""
    cluster = tikv_cluster_factory(layout="tidb-operator-v2")
    pods = cluster.tikv_pods()
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "TiKV" for p in pods), pods
    assert all(p["metadata"]["name"].startswith("tikv-tikv-") for p in pods)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        stores_before = {
            s["store"]["address"].split(".")[0]: s["store"]["id"]
            for s in _pd(env, "/pd/api/v1/stores")["stores"]
        }
        victim, other = sorted(stores_before)[:2]
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        cluster_before = _v2_cluster(env)
        outage_uid = _pod(env, other)["metadata"]["uid"]
        with (
            ImageHistory(cluster, other) as images,
            ReadyHistory(cluster, other) as outage_ready,
            PodFieldHistory(cluster, "basic", ".spec.paused", kind="clusters.core.pingcap.com") as paused,
        ):
            stopped = _drill(
                env,
                "outage",
                {"action": "store-outage", "durationSeconds": 20},
                {"tidbCluster": "basic", "pod": other},
            )
        restored = _pod(env, other)
        cluster_after = _v2_cluster(env)
        store_after_outage = _pd(env, f"/pd/api/v1/store/{stores_before[other]}")

        env.wait_no_open_tickets(60)
        kill_uid = _pod(env, victim)["metadata"]["uid"]
        with PodHistory(cluster) as kills, ReadyHistory(cluster, victim) as kill_ready:
            killed = _drill(
                env, "kill", {"action": "pod-kill"}, {"selector": {"matchLabels": V2_SELECTOR}, "pod": victim}
            )
        replacement = _pod(env, victim)
        store_after_kill = _pd(env, f"/pd/api/v1/store/{stores_before[victim]}")

        env.wait_no_open_tickets(60)
        leader_before = _pd(env, "/pd/api/v1/leader")["name"]
        leader_kill = _drill(env, "pd-leader", {"action": "pd-leader-kill"}, {"tidbCluster": "basic"})
        wait_for(lambda: _pd(env, "/pd/api/v1/leader")["name"] != leader_before, 30, "a new PD leader")
        pd_pod = _pod(env, leader_before)

        # Why the pause: unpaused, the operator re-applies a swapped image within moments.
        # (Last: the stop and start it causes opens a ticket that would hold a later drill back.)
        env.kubectl(
            "patch",
            "pod",
            other,
            "-n",
            env.ns,
            "--type=json",
            "-p",
            json.dumps([{"op": "replace", "path": "/spec/containers/0/image", "value": PAUSE}]),
        )
        wait_for(
            lambda: _pod(env, other)["spec"]["containers"][0]["image"] == TIKV_IMAGE,
            10,
            "the operator's re-apply",
        )
        wait_for(lambda: pod_ready(_pod(env, other)), 30, f"{other} Ready again")
    finally:
        env.stop()

    # Derived from the v2 Cluster: the PD address it publishes (status.pd), v2's labels.
    for derived in (stopped, leader_kill):
        assert derived["run"]["pdAddress"] == f"http://pd-pd.{env.ns}:2379", derived["run"]
        selector = derived["run"]["spec"]["target"]["selector"]["matchLabels"]
        assert selector == {**V2_SELECTOR, "pingcap.com/managed-by": "tidb-operator"}, selector

    # store-outage: the Cluster paused around the two swaps, then exactly as it was.
    assert (stopped["phase"], stopped["verdict"]) == ("Completed", "Pass"), stopped
    assert stopped["victim"]["pausedCluster"] == "basic", stopped["victim"]
    assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], images.images
    assert paused.sequence() == ["", "true", ""], paused.changes
    # The pause covered the outage: unpaused, the operator puts a swapped image back within a
    # reconcile (shown below), yet the pause image stayed for the whole duration. (Two watches'
    # delivery times do not order the writes they report: they are not compared.)
    [(swapped_at, _, _), (back_at, _, _)] = images.changes[1:]
    assert back_at - swapped_at >= 20.0, images.changes
    assert cluster_after["spec"] == cluster_before["spec"], cluster_after
    assert (cluster_after["metadata"].get("annotations") or {}) == (
        cluster_before["metadata"].get("annotations") or {}
    ), cluster_after["metadata"]
    [injected] = [c for c in stopped["conditions"] if c["type"] == "Injected"]
    assert "tidb-operator v2's Cluster basic paused for the outage" in injected["message"], injected
    assert restored["metadata"]["uid"] == outage_uid, "the same pod: nothing replaced"
    assert restored["spec"]["containers"][0]["image"] == TIKV_IMAGE
    t = {k: parse_rfc3339(v) for k, v in stopped["timeline"].items()}
    assert t["restoredAt"] - t["injectedAt"] >= 20.0, stopped["timeline"]
    # /tikv-server is not in the pause image: not Ready while stopped, Ready again after.
    assert _ready_since(restored) >= t["restoredAt"] - 1.0, (restored["status"], stopped["timeline"])
    _assert_ready_moment(
        t, restored, outage_ready.ready_again(outage_uid, same_pod=True), stopped["timeline"]
    )
    assert store_after_outage["store"]["state_name"] == "Up"
    assert store_after_outage["store"]["id"] == stores_before[other], "the store came back, not a new one"
    assert t["recoveredAt"] >= max(t["podReadyAt"], t["storeUpAt"])
    assert stopped["diagnosis"]["matchesInjectedFault"] is True, json.dumps(stopped["diagnosis"], indent=1)

    assert (killed["phase"], killed["verdict"]) == ("Completed", "Pass"), killed
    assert killed["victim"]["pod"] == victim and killed["victim"]["storeId"] == stores_before[victim]
    assert kills.replaced() == {victim: 1}, kills.replaced()
    assert replacement["metadata"]["ownerReferences"][0]["kind"] == "TiKV", "recreated by the operator"
    t = {k: parse_rfc3339(v) for k, v in killed["timeline"].items()}
    _assert_ready_moment(t, replacement, kill_ready.ready_again(kill_uid, same_pod=False), killed["timeline"])
    assert store_after_kill["store"]["state_name"] == "Up"
    started = parse_rfc3339(store_after_kill["status"]["start_ts"])
    assert t["injectedAt"] < started <= t["storeUpAt"] + 1.0 and t["recoveredAt"] >= t["storeUpAt"]

    assert (leader_kill["phase"], leader_kill["verdict"]) == ("Completed", "Pass"), leader_kill
    assert leader_kill["victim"]["pod"] == leader_kill["victim"]["pdMember"] == leader_before
    assert leader_before.startswith("pd-pd-") and pd_pod["metadata"]["uid"] != leader_kill["victim"]["uid"]
    assert pd_pod["metadata"]["ownerReferences"][0]["kind"] == "PD"
    t = {k: parse_rfc3339(v) for k, v in leader_kill["timeline"].items()}
    assert t["injectedAt"] < t["pdLeaderElectedAt"] <= t["recoveredAt"], leader_kill["timeline"]


def _unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["spec"] == before["spec"], (before["spec"], after["spec"])
    assert (after["metadata"].get("annotations") or {}) == (before["metadata"].get("annotations") or {}), (
        after
    )


def test_a_v2_outage_never_leaves_the_cluster_paused(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The controller SIGKILLed right after it paused the Cluster (the image not swapped yet) and
    right after it resumed it (not yet recorded), and a drill deleted mid-outage: each time the
    image goes out and back exactly once and the Cluster ends exactly as it was. A Cluster its
    users had paused already is left paused, and not marked."""
    cluster = tikv_cluster_factory(layout="tidb-operator-v2")
    pod = sorted(p["metadata"]["name"] for p in cluster.tikv_pods())[0]
    env = started_drill_env(cluster, tmp_path / "drill")
    outage = {"action": "store-outage", "durationSeconds": 6}
    target = {"selector": {"matchLabels": V2_SELECTOR}, "pod": pod}
    results: dict[str, dict[str, Any]] = {}
    histories: dict[str, list[str]] = {}
    try:
        wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])
        before = _v2_cluster(env)
        for point in PAUSE_POINTS:
            env.kill_controller()
            marker = env.workdir / f"v2-crash-{point}"
            crashing = env.start_controller(CHAOSDEMO_CRASH_AT=point, CHAOSDEMO_CRASH_MARKER=str(marker))
            with ImageHistory(cluster, pod) as images:
                env.drill(
                    point,
                    {"target": target, "fault": outage, "diagnosis": {"provider": "offline"}},
                )
                wait_for(
                    lambda m=marker, c=crashing: m.exists() and not c.alive(),  # type: ignore[misc]
                    90,
                    f"the controller to die at {point}",
                )
                env.start_controller()
                results[point] = env.wait_phase(point, TERMINAL, timeout=150)
            histories[point] = images.sequence()
            _unchanged(before, _v2_cluster(env))
            env.wait_no_open_tickets(60)

        # Deleted mid-outage: the finalizer swaps the image back, then resumes the Cluster.
        with ImageHistory(cluster, pod) as images:
            env.drill("deleted", {"target": target, "fault": {**outage, "durationSeconds": 600}})
            env.wait_phase("deleted", {"Detecting", "Diagnosing", "Recovering"})
            assert _v2_cluster(env)["spec"].get("paused") is True
            env.kubectl("delete", "chaosdemo", "deleted", "-n", env.ns, "--wait=true", "--timeout=90s")
        histories["deleted"] = images.sequence()
        _unchanged(before, _v2_cluster(env))
        env.wait_no_open_tickets(60)

        # Paused by its users: the drill runs inside their pause and leaves it to them.
        env.kubectl(
            "patch",
            "clusters.core.pingcap.com",
            "basic",
            "-n",
            env.ns,
            "--type=merge",
            "-p",
            '{"spec":{"paused":true}}',
        )
        users_pause = _v2_cluster(env)
        results["users"] = _drill(env, "users-pause", outage, target)
        _unchanged(users_pause, _v2_cluster(env))

        # No Cluster to pause: refused before anything is touched, naming it.
        env.kubectl("delete", "clusters.core.pingcap.com", "basic", "-n", env.ns)
        with ImageHistory(cluster, pod) as untouched:
            results["no-cluster"] = _drill(env, "no-cluster", outage, target)
    finally:
        env.stop()

    for point in PAUSE_POINTS:
        st = results[point]
        assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), (point, st)
        assert histories[point] == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], (point, histories[point])
    assert histories["deleted"] == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], histories["deleted"]
    st = results["users"]
    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    [injected] = [c for c in st["conditions"] if c["type"] == "Injected"]
    assert "was paused already by its users (left as it is)" in injected["message"], injected
    refused = results["no-cluster"]
    assert (refused["phase"], refused["reason"]) == ("Failed", "OperatorClusterNotFound"), refused
    assert f"Cluster {env.ns}/basic" in refused["message"] and "injectingAt" not in refused["timeline"]
    assert untouched.sequence() == [TIKV_IMAGE], untouched.changes
