"""Did the user's alerting catch it? Drills timed against the standard TiKV/PD alert rules in a
real Prometheus and a real Alertmanager. Everything runs on the emulator's clock at a fifth of real
time: TiKV heartbeats every 2 s, PD marks a store Disconnected after 4 s, the rules' `for: 1m` is
12 s (controller/sandbox/prometheus.py scales it; the expressions are the rules' own). Every
figure is compared with Prometheus' own record (its ALERTS series and the gauges the rules read),
within the resolution of its scrapes and evaluations; the same drills at real timings (15 s
scrapes, `for: 1m`) are `benchmarks.alert_ttd`."""

from __future__ import annotations

import json
import sqlite3
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
TIME_SCALE = 0.2
FOR_SECONDS = 60 * TIME_SCALE  # the rules' `for: 1m` on the emulator's clock
SCRAPE = EVALUATION = 0.5
# A moment read from Prometheus is exact to one evaluation; one derived from a gauge it scraped
# is late by up to one scrape more.
RESOLUTION = SCRAPE + EVALUATION


def _samples(prometheus_url: str, selector: str, since: float) -> list[float]:
    """Timestamps of every sample of ``selector`` after ``since``, from Prometheus' own store."""
    window = int(time.time() - since) + 2
    query = urllib.parse.urlencode({"query": f"{selector}[{window}s]"})
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/query?{query}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    return sorted(
        float(t) for series in result for t, v in series["values"] if float(t) > since and float(v) > 0
    )


def _first_sample(
    prometheus_url: str, alertname: str, state: str, instance: str | None, since: float
) -> float:
    """The truth: Prometheus' own first ALERTS sample of the alert in ``state`` after ``since``."""
    instance_matcher = f',instance="{instance}"' if instance else ""
    selector = f'ALERTS{{alertname="{alertname}",alertstate="{state}"{instance_matcher}}}'
    times = _samples(prometheus_url, selector, since)
    assert times, f"no sample of {selector} since {since}"
    return times[0]


def _assert_timed_as_prometheus(
    prometheus_url: str, source: dict, instance: str | None, since: float
) -> None:
    """The source's pending and firing moments are Prometheus' own, and it fired no sooner than
    `for:` after it went pending."""
    pending = parse_rfc3339(source["pendingAt"])
    firing = parse_rfc3339(source["firingAt"])
    truth_pending = _first_sample(prometheus_url, source["alert"], "pending", instance, since)
    truth_firing = _first_sample(prometheus_url, source["alert"], "firing", instance, since)
    assert abs(pending - truth_pending) <= EVALUATION, (source, truth_pending)
    assert abs(firing - truth_firing) <= EVALUATION, (source, truth_firing)
    assert firing - pending >= FOR_SECONDS - 0.01, ("fired before its for:", source)


def _source(st: dict, name: str) -> dict:
    return next(s for s in st["detection"]["sources"] if s["name"] == name)


@pytest.fixture
def alerting_env(tikv_cluster_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(
        time_scale=TIME_SCALE, with_alerting=True, scrape_interval=SCRAPE, evaluation_interval=EVALUATION
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
            "detection": {"timeoutSeconds": 40, "expectWithinSeconds": 40, "sources": sources},
            "diagnosis": {"provider": "offline"},
        },
    )
    injected = env.wait_phase("restart", {"Detecting", "Diagnosing", "Recovering"})
    # The controller dies during detection and comes back only after the rule fired (as
    # Prometheus itself records it): the alert times are rebuilt from Prometheus' ALERTS, not lost.
    env.kill_controller()
    kill = parse_rfc3339(injected["timeline"]["injectedAt"])
    status_address = injected["victim"]["statusAddress"]
    wait_for(
        lambda: _samples(prom.url, f'ALERTS{{alertname="{RESTART}",alertstate="firing"}}', kill),
        60,
        f"{RESTART} to fire in Prometheus",
    )
    env.start_controller()
    st = env.wait_phase("restart", TERMINAL, timeout=60)

    assert st["verdict"] == "Pass", st
    rule = _source(st, "restart-rule")
    assert rule["state"] == "Detected" and rule["alert"] == RESTART, rule
    assert rule["labels"]["instance"] == status_address
    _assert_timed_as_prometheus(prom.url, rule, status_address, kill)
    firing = parse_rfc3339(rule["firingAt"])
    assert rule["ttdSeconds"] == pytest.approx(firing - kill, abs=0.01) and rule["ttdSeconds"] > FOR_SECONDS
    am = _source(st, "alertmanager")
    # Alertmanager's startsAt is the firing time Prometheus sent it.
    assert am["state"] == "Detected" and abs(parse_rfc3339(am["firingAt"]) - firing) <= RESOLUTION, am
    tickets = _source(st, "tickets")
    assert tickets["state"] == "Detected" and tickets["ticketId"] >= 1, tickets
    # The monitor's ticket is timed from the moment the ticket store recorded it.
    with sqlite3.connect(env.db_path) as db:
        [(opened_at,)] = db.execute("SELECT opened_at FROM tickets WHERE id = ?", (tickets["ticketId"],))
    assert tickets["ttdSeconds"] == pytest.approx(float(opened_at) - kill, abs=0.01), (tickets, opened_at)
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
                "timeoutSeconds": 8,
                "expectWithinSeconds": 8,
                "sources": [
                    {"type": "tickets"},
                    {"type": "prometheus", "name": "restart-rule", "alertnames": [RESTART]},
                ],
            },
            "diagnosis": {"enabled": False},
        },
    )
    st = env.wait_phase("already-firing", TERMINAL, timeout=60)
    rule = _source(st, "restart-rule")
    assert (st["verdict"], rule["state"]) == ("Undetected", "Missed"), st
    assert "already active before the kill" in rule["why"], rule


def test_a_store_kept_away_past_pd_threshold_fires_the_pd_rule(alerting_env: DrillEnv) -> None:
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
                    "timeoutSeconds": 60,
                    "expectWithinSeconds": 60,
                    "sources": [
                        {"type": "prometheus", "name": "disconnect-rule", "alertnames": [DISCONNECT]}
                    ],
                },
                "recovery": {"timeoutSeconds": 120},
                "diagnosis": {"enabled": False},
            },
        )

        def fired() -> dict | None:
            src = (env.status("kept-away").get("detection") or {}).get("sources") or []
            return src[0] if src and src[0]["state"] == "Detected" else None

        rule = wait_for(fired, 60, "the PD disconnect rule to fire", interval=0.5)
    finally:
        cp.kubectl("uncordon", *nodes)
    st = env.wait_phase("kept-away", TERMINAL, timeout=120)
    kill = parse_rfc3339(st["timeline"]["injectedAt"])
    assert st["verdict"] == "Pass", st
    assert rule["alert"] == DISCONNECT and "instance" in rule["labels"]
    prom_url = env.cluster.prometheus.url  # type: ignore[union-attr]
    # The truth the rule stands on: PD's own gauge counting the store Disconnected (20 s, here
    # 4 s, after its last heartbeat, which came up to one heartbeat interval before the kill).
    disconnected = _samples(prom_url, 'pd_cluster_status{type="store_disconnected_count"}', kill)
    assert disconnected, "PD never reported the store Disconnected"
    pending = parse_rfc3339(rule["pendingAt"])
    assert disconnected[0] - 0.01 <= pending <= disconnected[0] + RESOLUTION, (rule, disconnected[0])
    _assert_timed_as_prometheus(prom_url, rule, None, kill)
    assert rule["ttdSeconds"] == pytest.approx(parse_rfc3339(rule["firingAt"]) - kill, abs=0.01), rule
