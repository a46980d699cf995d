"""The faults beyond pod-kill, end to end on the real API server, the real StatefulSet controller,
real Prometheus, the monitor and the controller (the emulator stands in for TiKV and PD).

store-outage: the TiKV container's image is swapped for a pause image for durationSeconds; the
pod stays, the store is gone. With four stores and a short max-store-down-time, PD marks it
Disconnected, then Down, and rebuilds its replicas on the others; then the image comes back.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from controller.operator.crashpoints import OUTAGE_POINTS
from controller.tickets import TicketDB
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

TERMINAL = {"Completed", "Failed", "Aborted"}
PAUSE = "registry.k8s.io/pause:3.10"
TIKV_IMAGE = "pingcap/tikv:v8.5.0"
READY_PATH = '.status.conditions[?(@.type=="Ready")].status'


def _pd(env: DrillEnv, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{env.cluster.pd_url}{path}", data=data, method="POST" if data else "GET"
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read() or b"null")


def _tickets_for(env: DrillEnv, store_id: int) -> list[Any]:
    async def fetch() -> list[Any]:
        async with TicketDB(env.db_path) as db:
            return [t for t in await db.recent(50) if t.store_id == store_id]

    return asyncio.run(fetch())


def _outage(name: str, pod: str, seconds: int, **spec: Any) -> dict[str, Any]:
    return {
        "target": {"pod": pod},
        "fault": {"action": "store-outage", "durationSeconds": seconds},
        "recovery": {"waitForLeadersSeconds": 0},
        **spec,
    }


def _wait_stores_aged(env: DrillEnv) -> None:
    wait_stores_aged(lambda: _pd(env, "/pd/api/v1/stores")["stores"])


def _last_spec_write(pod: dict) -> float:
    """The API server's own record of the last write to the pod's spec (managedFields, not the
    status subresource kwok writes)."""
    return max(
        parse_rfc3339(entry["time"])
        for entry in pod["metadata"]["managedFields"]
        if entry.get("operation") == "Update"
        and not entry.get("subresource")
        and "f:spec" in entry["fieldsV1"]
    )


def test_store_outage_end_to_end(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Four stores, max-store-down-time 60 s (6 s at the sandbox's time scale): the store goes
    Disconnected, then Down, its replicas are rebuilt on the other three (PD's region checks show
    the learners catching up), the image comes back after 20 s, the store re-registers, and the
    blind diagnosis says a store stayed down."""
    cluster = tikv_cluster_factory(stores=4)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        _pd(env, "/pd/api/v1/config", {"max-store-down-time": "60s"})
        _wait_stores_aged(env)
        pending_seen: set[int] = set()
        before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.tikv_pods()}
        with (
            ImageHistory(cluster, "tikv-1") as images,
            PodFieldHistory(cluster, "tikv-1", READY_PATH) as ready,
        ):
            env.drill("outage", _outage("outage", "tikv-1", 20))

            def repair_seen() -> bool:
                check = _pd(env, "/pd/api/v1/regions/check/pending-peer")
                for region in check.get("regions") or []:
                    pending_seen.update(
                        p["store_id"]
                        for p in region.get("pending_peers", [])
                        if p.get("role_name") == "Learner"
                    )
                st = env.status("outage")
                return st.get("phase") in TERMINAL

            wait_for(repair_seen, 120, "the outage drill to finish", interval=0.3)
        st = env.status("outage")
        victim_store = st["victim"]["storeId"]
        regions = _pd(env, "/pd/api/v1/regions")["regions"]
        pods = {p["metadata"]["name"]: p for p in cluster.tikv_pods()}
        # kubectl leaves managedFields out unless asked.
        victim_pod = json.loads(
            env.kubectl("get", "pod", "tikv-1", "-n", env.ns, "-o", "json", "--show-managed-fields").stdout
        )
        tickets = _tickets_for(env, victim_store)
    finally:
        env.stop()

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    # The image went to pause and back once, on the same pod; no pod was replaced.
    assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], images.images
    assert {n: p["metadata"]["uid"] for n, p in pods.items()} == before
    assert st["victim"]["originalImage"] == TIKV_IMAGE and st["victim"]["pauseImage"] == PAUSE
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    # The store stayed stopped for the duration: the swap back came no sooner than 20 s after the
    # swap out, and restoredAt is when the API server took it (its record of the pod's last spec
    # write, whole seconds; the moment is taken as the patch returns).
    assert t["restoredAt"] - t["injectedAt"] >= 20.0, st["timeline"]
    spec_written = _last_spec_write(victim_pod)
    assert spec_written - 0.5 <= t["restoredAt"] <= spec_written + 1.5, (st["timeline"], spec_written)
    # The pause image's entrypoint runs, but the manifests' readiness probe (TiKV's status port)
    # never passes in it: not Ready from the swap until after the swap back, and podReadyAt is
    # the pod's own Ready transition then, not the swap back.
    went_down = [arrived for arrived, _, value in ready.changes if value == "False"]
    assert went_down and t["injectedAt"] <= went_down[0] <= t["injectedAt"] + 5, (
        ready.changes,
        st["timeline"],
    )
    back_up = [arrived for arrived, _, value in ready.changes if value == "True" and arrived > went_down[0]]
    assert back_up and back_up[0] > t["restoredAt"], (ready.changes, st["timeline"])
    assert t["restoredAt"] < t["podReadyAt"] <= back_up[0] + 0.5, (ready.changes, st["timeline"])
    assert victim_pod["status"]["containerStatuses"][0]["restartCount"] == 2, victim_pod["status"]
    assert t["storeUpAt"] >= t["restoredAt"] - 1.0 and t["recoveredAt"] >= t["storeUpAt"]
    assert st["metrics"]["timeToRecoverSeconds"] == pytest.approx(
        t["recoveredAt"] - t["injectedAt"], abs=0.0015
    )

    # Detection: one ticket for the store, telling the whole story in order.
    assert len(tickets) == 1, tickets
    signals = tickets[0].signals
    for signal in ("store_unreachable", "store_disconnected", "store_down"):
        assert signal in signals, signals
    first = {o.signal: o.at for o in reversed(tickets[0].observations)}
    assert first["store_unreachable"] < first["store_disconnected"] < first["store_down"], first
    # Replica repair: learners (pending peers) caught up on the other stores, and no region keeps a peer on the
    # stopped store; every region has three voters again.
    assert pending_seen and victim_store not in pending_seen, pending_seen
    for region in regions:
        voters = [p["store_id"] for p in region["peers"] if p.get("role_name") != "Learner"]
        assert victim_store not in voters and len(voters) == 3, region

    # Diagnosed blind as a store that stayed down, naming it.
    diagnosis = st["diagnosis"]
    assert diagnosis["blind"] is True and diagnosis["rootCauseCategory"] == "tikv_store_down", diagnosis
    assert diagnosis["matchesInjectedFault"] is True, diagnosis


def _images_back(env: DrillEnv, pod: str, uid: str) -> None:
    wait_for(
        lambda: next(
            (
                p
                for p in env.cluster.tikv_pods()
                if p["metadata"]["name"] == pod
                and p["metadata"]["uid"] == uid
                and p["spec"]["containers"][0]["image"] == TIKV_IMAGE
            ),
            None,
        ),
        30,
        f"{pod}'s original image back",
    )


def test_store_outage_image_put_back_exactly_once(drill_env: DrillEnv) -> None:
    """Deleted mid-outage, aborted mid-outage, and the controller SIGKILLed at each of the
    drill's step boundaries: every time, the original image is back, and the pod's image changed
    exactly twice (out and back) — never swapped again, never left paused."""
    env = drill_env
    pod = "tikv-0"
    uid = next(p["metadata"]["uid"] for p in env.cluster.tikv_pods() if p["metadata"]["name"] == pod)
    outcomes: dict[str, tuple[str, str]] = {}

    def settle() -> None:
        env.wait_no_open_tickets(60)
        wait_for(lambda: env.ready_pods() == 3, 30, "all pods Ready")

    # Deleted mid-outage: the finalizer swaps the image back before letting the object go.
    with ImageHistory(env.cluster, pod) as images:
        env.drill("outage-deleted", _outage("outage-deleted", pod, 600))
        env.wait_phase("outage-deleted", {"Detecting", "Diagnosing", "Recovering"})
        env.kubectl("delete", "chaosdemo", "outage-deleted", "-n", env.ns, "--wait=true", "--timeout=90s")
        _images_back(env, pod, uid)
    assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], ("deleted", images.images)
    settle()

    # Aborted mid-outage: the image is back and the verdict says so.
    with ImageHistory(env.cluster, pod) as images:
        env.drill("outage-aborted", _outage("outage-aborted", pod, 600))
        env.wait_phase("outage-aborted", {"Detecting", "Diagnosing", "Recovering"})
        env.kubectl(
            "patch",
            "chaosdemo",
            "outage-aborted",
            "-n",
            env.ns,
            "--type=merge",
            "-p",
            '{"spec":{"abort":true}}',
        )
        st = env.wait_phase("outage-aborted", TERMINAL, timeout=90)
        outcomes["aborted"] = (st["verdict"], st["reason"])
    assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], ("aborted", images.images)
    assert "restoredAt" in st["timeline"], st
    env.kubectl("delete", "chaosdemo", "outage-aborted", "-n", env.ns, "--wait=true", "--timeout=30s")
    settle()

    # SIGKILL at each step boundary, then a fresh controller finishes the drill.
    for point in OUTAGE_POINTS:
        env.kill_controller()
        marker = env.workdir / f"outage-crash-{point}"
        crashing = env.start_controller(CHAOSDEMO_CRASH_AT=point, CHAOSDEMO_CRASH_MARKER=str(marker))
        name = f"outage-{point}"
        with ImageHistory(env.cluster, pod) as images:
            env.drill(name, _outage(name, pod, 5))
            wait_for(
                lambda m=marker, c=crashing: m.exists() and not c.alive(),
                90,
                f"the controller to die at {point}",
            )
            env.start_controller()
            st = env.wait_phase(name, TERMINAL, timeout=120)
            _images_back(env, pod, uid)
        outcomes[point] = (st["verdict"], st["reason"])
        assert images.sequence() == [TIKV_IMAGE, PAUSE, TIKV_IMAGE], (point, images.images)
        assert st["verdict"] == "Pass", (point, st)
        env.kubectl("delete", "chaosdemo", name, "-n", env.ns, "--wait=true", "--timeout=30s")
        settle()
    assert outcomes["aborted"] == ("Aborted", "Aborted"), outcomes


def test_store_outage_refused_without_a_pause_image(drill_env: DrillEnv) -> None:
    """The CRD refuses a pauseImage that is not a pause image; nothing is touched."""
    env = drill_env
    body = {
        "apiVersion": "chaos.operator.dev/v1alpha1",
        "kind": "ChaosDemo",
        "metadata": {"name": "not-pause"},
        "spec": {"fault": {"action": "store-outage", "pauseImage": "busybox:1.36"}},
    }
    result = env.kubectl("apply", "-n", env.ns, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0 and "pauseImage" in result.stderr, result.stderr

    # Named like a pause image, but not one the controller's configuration allows: refused
    # before any Lease is taken or any pod touched.
    with ImageHistory(env.cluster, "tikv-0") as images:
        env.drill(
            "evil-pause",
            {
                "target": {"pod": "tikv-0"},
                "fault": {"action": "store-outage", "pauseImage": "evil.example/x/pause:1"},
            },
        )
        st = env.wait_phase("evil-pause", TERMINAL, timeout=30)
    assert (st["verdict"], st["reason"]) == ("Error", "PauseImageNotAllowed"), st
    assert "registry.k8s.io/pause:3.10" in st["message"] and "lockedAt" not in st["timeline"], st
    assert images.sequence() == [TIKV_IMAGE], images.images


def test_pod_kill_with_a_grace_period_is_timed_from_the_container_stop(drill_env: DrillEnv) -> None:
    """With gracePeriodSeconds > 0 the delete returns at once and TiKV serves on until its
    container stops (the sandbox's kubelet, kwok, takes 0.5-2 s after SIGTERM, then records the
    container terminated and the pod not Ready, then removes it). The kill is timed from that
    stop, as the API server delivered it (a watch of the pod's Ready condition, ours alone), not
    from when the delete returned; detection is timed from it too."""
    env = drill_env
    pod = "tikv-1"
    with PodFieldHistory(env.cluster, pod, READY_PATH) as ready:
        env.drill(
            "graceful",
            {
                "target": {"pod": pod},
                "fault": {"action": "pod-kill", "gracePeriodSeconds": 5},
                "recovery": {"waitForLeadersSeconds": 0},
            },
        )
        st = env.wait_phase("graceful", TERMINAL, timeout=120)
    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    victim_uid = st["victim"]["uid"]
    stopped = [arrived for arrived, uid, value in ready.changes if uid == victim_uid and value == "False"]
    assert stopped, ready.changes
    # The delete went out at injectionSentAt; the container stopped at least kwok's 0.5 s later.
    assert t["injectedAt"] - t["injectionSentAt"] >= 0.4, st["timeline"]
    assert t["injectedAt"] == pytest.approx(stopped[0], abs=0.25), (st["timeline"], ready.changes)
    ticket = _tickets_for(env, st["victim"]["storeId"])[0]
    assert st["metrics"]["timeToDetectSeconds"] == pytest.approx(
        ticket.opened_at - t["injectedAt"], abs=0.002
    )
    injected = next(c for c in st["conditions"] if c["type"] == "Injected")
    assert "container stopped" in injected["message"] and "finishedAt" in injected["message"], injected


def test_pod_kill_count_two_on_five_stores(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Five stores. With three replicas every pair of stores shares a region, so killing two at
    once is refused, naming the regions, and nothing is touched. With five replicas (three is a
    majority) two go at once: both pods are replaced, detection is the first ticket about either,
    recovery waits for both, and the blind diagnosis names both."""
    cluster = tikv_cluster_factory(stores=5)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        _wait_stores_aged(env)
        with PodHistory(cluster) as refused_history:
            env.drill("two-refused", {"fault": {"count": 2}})
            refused = env.wait_phase("two-refused", TERMINAL, timeout=60)
        _pd(env, "/pd/api/v1/config", {"max-replicas": 5})
        with PodHistory(cluster) as history:
            env.drill("two", {"fault": {"count": 2}, "recovery": {"waitForLeadersSeconds": 0}})
            st = env.wait_phase("two", TERMINAL, timeout=120)
        tickets = {v["storeId"]: _tickets_for(env, v["storeId"]) for v in st.get("victims") or []}
    finally:
        env.stop()

    assert (refused["verdict"], refused["reason"]) == ("Error", "WouldLoseMajority"), refused
    assert "without a Raft majority" in refused["message"] and "region(s)" in refused["message"], refused
    assert refused_history.replaced() == {}, "a refused drill touches nothing"
    assert "injectingAt" not in refused["timeline"]

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    victims = st["victims"]
    assert len(victims) == 2 and st["victim"] == victims[0], victims
    assert history.replaced() == {v["pod"]: 1 for v in victims}, history.uids
    # Detection: the first ticket about either store, timed from the kill.
    first = min((t for ts in tickets.values() for t in ts), key=lambda t: t.opened_at)
    assert st["incident"]["ticketId"] == first.id
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    assert st["metrics"]["timeToDetectSeconds"] == pytest.approx(first.opened_at - t["injectedAt"], abs=0.002)
    # Recovery is the last victim's: each pod Ready and each store back before recoveredAt.
    for v in victims:
        store = env.cluster.pd_store(v["storeId"])
        assert store["store"]["state_name"] == "Up"
        assert parse_rfc3339(store["status"]["start_ts"]) <= t["storeUpAt"] + 0.1, (store, st["timeline"])
    diagnosis = st["diagnosis"]
    assert diagnosis["matchesInjectedFault"] is True, diagnosis
    assert diagnosis["rootCauseCategory"] == "tikv_pod_failure", diagnosis


def test_pd_leader_kill_end_to_end(drill_env: DrillEnv) -> None:
    """The PD leader's pod (as PD names it) is deleted with grace 0: PD has no leader until the
    others elect one after the old leader's lease, the member comes back as a follower, the
    monitor's ticket is about PD, and the blind diagnosis says PD lost its leader, naming it."""
    env = drill_env
    _wait_stores_aged(env)
    leader_before = _pd(env, "/pd/api/v1/leader")["name"]
    with PodHistory(env.cluster) as history:
        env.drill("pd-leader", {"fault": {"action": "pd-leader-kill"}})
        st = env.wait_phase("pd-leader", TERMINAL, timeout=120)
        pd_pods = {
            p["metadata"]["name"]: p["metadata"]["uid"]
            for p in json.loads(
                env.kubectl(
                    "get", "pods", "-n", env.ns, "-l", "app.kubernetes.io/component=pd", "-o", "json"
                ).stdout
            )["items"]
        }
    leader_after = _pd(env, "/pd/api/v1/leader")["name"]
    health = _pd(env, "/pd/api/v1/health")

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    victim = st["victim"]
    assert victim["pod"] == victim["pdMember"] == leader_before and victim.get("storeId") is None, victim
    assert pd_pods[leader_before] != victim["uid"], "the leader's pod was replaced"
    assert history.replaced() == {}, "no TiKV pod was touched"
    assert leader_after != leader_before and all(m["health"] for m in health), (leader_after, health)
    t = {k: parse_rfc3339(v) for k, v in st["timeline"].items()}
    assert t["injectedAt"] < t["pdLeaderElectedAt"] <= t["recoveredAt"], st["timeline"]
    assert t["recoveredAt"] == max(t["podReadyAt"], t["pdLeaderElectedAt"], t["pdMemberHealthyAt"])
    assert st["incident"]["invariant"] in ("pd_unhealthy", "pd_leader_changed"), st["incident"]
    diagnosis = st["diagnosis"]
    assert diagnosis["rootCauseCategory"] == "pd_leader_loss" and diagnosis["matchesInjectedFault"], diagnosis
    assert diagnosis["blind"] is True
