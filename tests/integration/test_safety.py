"""Safety beyond the store count: a kill refused because a region would lose its majority, and a
drill that stops itself when something else goes wrong while its fault is in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.drills import DrillEnv, PodHistory, started_drill_env, wait_for

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
NODES = [f"kwok-node-{i}" for i in range(3)]


def _keep_away(env: DrillEnv, pod: str) -> None:
    """Delete a TiKV pod with every node cordoned: its store stays away until uncordoned."""
    env.kubectl("cordon", *NODES)
    env.kubectl("delete", "pod", pod, "-n", env.ns, "--grace-period=0", "--force", "--wait=false")


def test_region_quorum_refuses_a_kill_with_one_store_already_down(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(stores=5)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        _keep_away(env, "tikv-4")
        wait_for(lambda: cluster.pd_store(5)["store"]["state_name"] != "Up", 30, "store 5 to leave Up")
        with PodHistory(cluster) as history:
            # Four of five stores are Up: the old store-count guard (3 needed) would allow this.
            env.drill("quorum", {"target": {"pod": "tikv-0"}, "safety": {"requireHealthyCluster": False}})
            st = env.wait_phase("quorum", TERMINAL, timeout=30)
            env.drill("any", {"safety": {"requireHealthyCluster": False}})
            any_ = env.wait_phase("any", TERMINAL, timeout=30)
        assert (st["verdict"], st["reason"]) == ("Error", "WouldLoseMajority"), st
        assert "tikv-0 (store 1)" in st["message"] and "without a Raft majority" in st["message"], st[
            "message"
        ]
        # Every store shares a region with store 5: no candidate is safe, so none is chosen.
        assert (any_["verdict"], any_["reason"]) == ("Error", "WouldLoseMajority"), any_
        assert history.replaced() == {}, "nothing was deleted"
    finally:
        env.kubectl("uncordon", *NODES)
        env.stop()


def test_a_second_store_failing_mid_drill_aborts_it(drill_env: DrillEnv) -> None:
    env = drill_env
    env.stop_monitor()  # keeps the drill watching (Detecting) while the cluster changes under it
    env.drill("watchful", {"target": {"pod": "tikv-0"}, "detection": {"timeoutSeconds": 600}})
    wait_for(lambda: "recoveredAt" in (env.status("watchful").get("timeline") or {}), 30, "the victim back")
    try:
        _keep_away(env, "tikv-2")
        st = env.wait_phase("watchful", TERMINAL, timeout=40)
    finally:
        env.kubectl("uncordon", *NODES)
    assert (st["phase"], st["verdict"], st["reason"]) == ("Aborted", "Aborted", "ClusterUnhealthy"), st
    assert "store 3 (tikv-2)" in st["safetyAbort"] and "restored" in st["message"], st
    events = env.kubectl(
        "get", "events", "-n", env.ns, "--field-selector", "involvedObject.name=watchful"
    ).stdout
    assert "SafetyAbort" in events
    wait_for(lambda: env.ready_pods() == 3, 30, "tikv-2 back")


def test_two_spellings_of_one_pd_address_are_one_cluster(drill_env: DrillEnv) -> None:
    """Tickets and guards name the cluster by PD's cluster id: an open ticket the monitor filed
    while watching 127.0.0.1 blocks a drill that names PD as localhost."""
    import asyncio

    from controller.tickets import TicketDB

    env = drill_env
    env.kubectl("delete", "pod", "tikv-1", "-n", env.ns, "--grace-period=0", "--force", "--wait=false")
    wait_for(lambda: env.open_tickets() >= 1, 15, "the monitor's ticket")
    env.stop_monitor()  # the ticket stays open while the drill is tried
    # Only the ticket may stand in the way: the store is back and Up again in PD first (else
    # preflight rightly refuses StoreNotUp before it looks at tickets).
    wait_for(lambda: env.ready_pods() == 3, 30, "tikv-1 back")
    wait_for(
        lambda: all(env.cluster.pd_store(i)["store"]["state_name"] == "Up" for i in (1, 2, 3)),
        30,
        "stores Up",
    )

    async def clusters() -> set[str]:
        async with TicketDB(env.db_path) as db:
            return {t.cluster for t in await db.open_tickets()}

    assert asyncio.run(clusters()) == {env.cluster.ticket_cluster}
    other_spelling = env.cluster.pd_url.replace("127.0.0.1", "localhost") + "/"
    env.drill("spelled", {"target": {"pdAddress": other_spelling}})
    st = env.wait_phase("spelled", TERMINAL, timeout=30)
    assert (st["verdict"], st["reason"]) == ("Error", "OpenTicket"), st
    assert st["run"]["ticketCluster"] == env.cluster.ticket_cluster
    env.start_monitor()
    env.wait_no_open_tickets(40)


def test_a_drill_from_another_namespace_needs_the_targets_consent(drill_env: DrillEnv) -> None:
    """A ChaosDemo in team-a aimed at the opted-in TiKV namespace is refused until that namespace
    names team-a in its allowed-from annotation; then it runs."""
    env = drill_env
    env.kubectl("create", "namespace", "team-a")
    env.kill_controller()
    env.start_controller("team-a")
    body = {
        "apiVersion": "chaos.operator.dev/v1alpha1",
        "kind": "ChaosDemo",
        "spec": {"target": {"namespace": env.ns, "pod": "tikv-0"}, "recovery": {"waitForLeadersSeconds": 0}},
    }
    with PodHistory(env.cluster) as history:
        env.kubectl(
            "apply", "-n", "team-a", "-f", "-", input=json.dumps({**body, "metadata": {"name": "uninvited"}})
        )
        st = wait_for(lambda: _terminal(env, "team-a", "uninvited"), 60, "the refusal")
        assert (st["verdict"], st["reason"]) == ("Error", "NamespaceNotTrusted"), st
        assert "team-a" in st["message"] and "allowed-from" in st["message"], st
        assert history.replaced() == {}, "nothing was killed"
        env.kubectl("annotate", "namespace", env.ns, "chaos.operator.dev/allowed-from=team-b,team-a")
        env.kubectl(
            "apply", "-n", "team-a", "-f", "-", input=json.dumps({**body, "metadata": {"name": "invited"}})
        )
        st = wait_for(lambda: _terminal(env, "team-a", "invited"), 90, "the invited drill")
    assert st["verdict"] == "Pass" and st["victim"]["pod"] == "tikv-0", st
    assert history.replaced() == {"tikv-0": 1}


def _terminal(env: DrillEnv, namespace: str, name: str) -> dict | None:
    got = env.kubectl("get", "chaosdemo", name, "-n", namespace, "-o", "json", check=False)
    if got.returncode != 0:
        return None
    status = json.loads(got.stdout).get("status") or {}
    return status if status.get("phase") in TERMINAL else None
