"""Did the user's alerting catch it? Drills timed against the standard TiKV/PD alert rules in a
real Prometheus and a real Alertmanager, at realistic timings (time scale 1: TiKV heartbeats every
10 s, PD marks a store Disconnected after 20 s, the rules' own `for: 1m`). The sandbox scrapes and
evaluates every second (a real deployment: 15 s) so the test can compare times to the second."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from controller.timefmt import parse_rfc3339
from tests.support.drills import DrillEnv, started_drill_env, wait_for

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
RESTART = "TiKV_node_restart"
DISCONNECT = "PD_cluster_lost_connect_store_nums"


def _first_firing_sample(prometheus_url: str, alertname: str, instance: str | None, since: float) -> float:
    """The truth: Prometheus' own first firing ALERTS sample for the alert after ``since``."""
    instance_matcher = f',instance="{instance}"' if instance else ""
    selector = f'ALERTS{{alertname="{alertname}",alertstate="firing"{instance_matcher}}}'
    window = int(time.time() - since) + 1
    query = urllib.parse.urlencode({"query": f"{selector}[{window}s]"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    times = [float(t) for series in result for t, _ in series["values"] if float(t) > since]
    assert times, f"no firing sample of {selector} since {since}"
    return min(times)


def _source(st: dict, name: str) -> dict:
    return next(s for s in st["detection"]["sources"] if s["name"] == name)


@pytest.fixture
def alerting_env(tikv_cluster_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(
        time_scale=1.0, with_alerting=True, scrape_interval=1.0, evaluation_interval=1.0
    )
    env = started_drill_env(cluster, tmp_path / "drill", CHAOSDEMO_ALERTMANAGER_URL=cluster.alertmanager.url)
    try:
        yield env
    finally:
        env.stop()


def test_standard_rules_timed_per_source(alerting_env: DrillEnv) -> None:
    env = alerting_env
    prom = env.cluster.prometheus
    assert prom is not None
    sources = [
        {"type": "tickets"},
        {"type": "prometheus", "name": "restart-rule", "alertnames": [RESTART]},
        {"type": "prometheus", "name": "disconnect-rule", "alertnames": [DISCONNECT], "required": False},
        {"type": "alertmanager", "name": "alertmanager", "alertnames": [RESTART]},
        # Nothing listens there: recorded as Error, and being optional, the drill goes on.
        {"type": "alertmanager", "name": "unreachable", "url": "http://127.0.0.1:9", "required": False},
    ]
    env.drill(
        "restart",
        {
            "target": {"pod": "tikv-1"},
            "detection": {"timeoutSeconds": 100, "expectWithinSeconds": 95, "sources": sources},
            "diagnosis": {"provider": "offline"},
        },
    )
    env.wait_phase("restart", {"Detecting", "Diagnosing", "Recovering"})
    # The controller dies during detection and comes back after the rule fired: the alert times
    # are rebuilt from Prometheus' ALERTS, not lost.
    time.sleep(3)
    env.kill_controller()
    time.sleep(75)
    env.start_controller()
    st = env.wait_phase("restart", TERMINAL, timeout=150)
    kill = parse_rfc3339(st["timeline"]["injectedAt"])

    assert st["verdict"] == "Pass", st
    rule = _source(st, "restart-rule")
    status_address = st["victim"]["statusAddress"]
    assert rule["state"] == "Detected" and rule["alert"] == RESTART, rule
    assert rule["labels"]["instance"] == status_address
    truth = _first_firing_sample(prom.url, RESTART, status_address, kill)
    firing = parse_rfc3339(rule["firingAt"])
    pending = parse_rfc3339(rule["pendingAt"])
    assert abs(firing - truth) <= 1.0, (rule, truth)
    assert 59 <= firing - pending <= 62, "fired after its for: 1m"
    assert rule["ttdSeconds"] == pytest.approx(firing - kill, abs=0.01) and rule["ttdSeconds"] > 60
    am = _source(st, "alertmanager")
    assert am["state"] == "Detected" and abs(parse_rfc3339(am["firingAt"]) - firing) <= 1.5, am
    tickets = _source(st, "tickets")
    assert tickets["state"] == "Detected" and tickets["ttdSeconds"] < 5 and tickets["ticketId"] >= 1
    # The headline TTD is the last required source's.
    assert st["metrics"]["timeToDetectSeconds"] == pytest.approx(
        max(rule["ttdSeconds"], am["ttdSeconds"]), abs=0.01
    )
    # PD never marked a store back in seconds Disconnected: the rule cannot fire, and says why.
    missed = _source(st, "disconnect-rule")
    assert missed["state"] == "Missed", missed
    assert "20 s without a heartbeat" in missed["why"] and "back after" in missed["why"], missed["why"]

    broken = _source(st, "unreachable")
    assert broken["state"] == "Error" and "unreachable" in broken["why"], broken

    # The restart alert about tikv-1 is still firing (changes over 5m): a new drill on tikv-1
    # must not count it.
    env.wait_no_open_tickets(60)
    env.drill(
        "already-firing",
        {
            "target": {"pod": "tikv-1"},
            "detection": {
                "timeoutSeconds": 30,
                "expectWithinSeconds": 30,
                "sources": [
                    {"type": "tickets"},
                    {"type": "prometheus", "name": "restart-rule", "alertnames": [RESTART]},
                ],
            },
            "diagnosis": {"enabled": False},
        },
    )
    st = env.wait_phase("already-firing", TERMINAL, timeout=120)
    rule = _source(st, "restart-rule")
    assert (st["verdict"], rule["state"]) == ("Undetected", "Missed"), st
    assert "already active before the kill" in rule["why"], rule


def test_a_store_kept_away_past_20s_fires_the_pd_rule(alerting_env: DrillEnv) -> None:
    env = alerting_env
    cp = env.cluster.control_plane
    nodes = [f"kwok-node-{i}" for i in range(3)]
    cp.kubectl("cordon", *nodes)  # the killed pod's replacement cannot be scheduled
    try:
        env.drill(
            "kept-away",
            {
                "target": {"pod": "tikv-2"},
                "detection": {
                    "timeoutSeconds": 120,
                    "expectWithinSeconds": 120,
                    "sources": [
                        {"type": "prometheus", "name": "disconnect-rule", "alertnames": [DISCONNECT]}
                    ],
                },
                "recovery": {"timeoutSeconds": 240},
                "diagnosis": {"enabled": False},
            },
        )

        def fired() -> dict | None:
            src = (env.status("kept-away").get("detection") or {}).get("sources") or []
            return src[0] if src and src[0]["state"] == "Detected" else None

        rule = wait_for(fired, 130, "the PD disconnect rule to fire", interval=1.0)
    finally:
        cp.kubectl("uncordon", *nodes)
    st = env.wait_phase("kept-away", TERMINAL, timeout=120)
    kill = parse_rfc3339(st["timeline"]["injectedAt"])
    assert st["verdict"] == "Pass", st
    assert rule["alert"] == DISCONNECT and "instance" in rule["labels"]
    # PD calls the store Disconnected 20 s after its last heartbeat, which came 0-10 s before the
    # kill (every 10 s): 10-20 s after the kill; then for: 1m, on 1 s scrapes and evaluations.
    assert 70 <= rule["ttdSeconds"] <= 85, rule
    truth = _first_firing_sample(env.cluster.prometheus.url, DISCONNECT, None, kill)  # type: ignore[union-attr]
    assert abs(parse_rfc3339(rule["firingAt"]) - truth) <= 1.0
