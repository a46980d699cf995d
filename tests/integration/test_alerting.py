"""Did the user's alerting catch it? Drills timed against the standard TiKV/PD alert rules in a
real Prometheus and a real Alertmanager. Everything runs on the emulator's clock at a fifth of real
time: TiKV heartbeats every 2 s, PD marks a store Disconnected after 4 s, the rules' `for: 1m` is
12 s (controller/sandbox/prometheus.py scales it; the expressions are the rules' own). Every
figure is compared with Prometheus' own record (its ALERTS series and the gauges the rules read),
within the resolution of its scrapes and evaluations; the same drills at real timings (15 s
scrapes, `for: 1m`) are `benchmarks.alert_ttd`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from controller.timefmt import parse_rfc3339
from tests.support.drills import DrillEnv, started_drill_env, wait_for
from tests.support.prometheus_truth import (
    EVALUATION,
    FOR_SECONDS,
    RESOLUTION,
    SCRAPE,
    TIME_SCALE,
)
from tests.support.prometheus_truth import assert_timed_as_prometheus as _assert_timed_as_prometheus
from tests.support.prometheus_truth import samples as _samples

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
RESTART = "TiKV_node_restart"
DISCONNECT = "PD_cluster_lost_connect_store_nums"


def _source(st: dict, name: str) -> dict:
    return next(s for s in st["detection"]["sources"] if s["name"] == name)


@pytest.fixture
def alerting_env(tikv_cluster_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(
        time_scale=TIME_SCALE, with_alerting=True, scrape_interval=SCRAPE, evaluation_interval=EVALUATION
    )
    env = started_drill_env(cluster, tmp_path / "drill", **cluster.alerting_env())
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
    # A store back in seconds cannot keep PD's disconnect rule true for its for:, and the miss says
    # why. PD counts 20 s (scaled) from the store's last heartbeat, up to a heartbeat interval
    # before the kill, so its expression may have been true for a moment: then the rule's own
    # replay explains (true for so long, short of its for:), else the standard rules' layer does.
    missed = _source(st, "disconnect-rule")
    assert missed["state"] == "Missed", missed
    why = missed["why"]
    replayed = "short of its for:" in why and "needs an outage of at least" in why
    standard = "20 s without a heartbeat" in why and "back after" in why
    assert replayed or standard, why

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


# Another team's rules in the same Prometheus: a disk alert that happens to fire mid-drill (its
# expression follows the restart, so it surely fires within the drill; its labels name a node,
# not this cluster), and a user's own rule about the stores that needs 30 s (scaled) of outage.
GROUP_WAIT = 30 * TIME_SCALE  # Alertmanager's group_wait in the sandbox, scaled
USER_RULE = "TiKVStoreUnreachable"
USER_RULE_FOR = 30.0
TEAM_RULES = {
    "groups": [
        {
            "name": "other-team",
            "rules": [
                {
                    "alert": "NodeDiskAlmostFull",
                    "expr": 'count(changes(process_start_time_seconds{job="tikv"}[5m]) > 0) > 0',
                    "labels": {"job": "node-exporter", "instance": "10.0.0.7:9100", "level": "warning"},
                },
                {"alert": USER_RULE, "expr": 'up{job="tikv"} == 0', "for": f"{USER_RULE_FOR:g}s"},
            ],
        }
    ]
}


def test_two_victims_unrelated_alerts_a_user_rule_and_the_page(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two stores killed at once (five replicas): alerts about either victim count and say which;
    an unrelated alert firing mid-drill is ignored with its reason; the user's own rule's miss is
    explained from its own expression; Alertmanager's webhook page is timed at its arrival,
    about group_wait after the alert's startsAt."""
    rules = tmp_path / "team-rules.yml"
    rules.write_text(yaml.safe_dump(TEAM_RULES))
    cluster = tikv_cluster_factory(
        stores=5,
        time_scale=TIME_SCALE,
        with_alerting=True,
        scrape_interval=SCRAPE,
        evaluation_interval=EVALUATION,
        extra_rule_files=(rules,),
    )
    env = started_drill_env(cluster, tmp_path / "drill", **cluster.alerting_env())
    two = ["tikv-1", "tikv-3"]
    sources = [
        {"type": "prometheus", "name": "any-alert", "required": False},
        *(
            {
                "type": "prometheus",
                "name": f"restart-{pod}",
                "alertnames": [RESTART],
                "matchers": {"pod": pod},
            }
            for pod in two
        ),
        {"type": "prometheus", "name": "user-rule", "alertnames": [USER_RULE], "required": False},
        {"type": "alertmanager-notification", "name": "page", "alertnames": [RESTART]},
    ]
    try:
        _pd_config(cluster.pd_url, {"max-replicas": 5})
        env.drill(
            "two",
            {
                "target": {
                    "selector": {
                        "matchLabels": {"app.kubernetes.io/component": "tikv"},
                        "matchExpressions": [
                            {"key": "statefulset.kubernetes.io/pod-name", "operator": "In", "values": two}
                        ],
                    }
                },
                "fault": {"count": 2},
                "detection": {"timeoutSeconds": 40, "expectWithinSeconds": 40, "sources": sources},
                "diagnosis": {"enabled": False},
                "recovery": {"waitForLeadersSeconds": 0},
            },
        )
        st = env.wait_phase("two", TERMINAL, timeout=120)
    finally:
        env.stop()
    prom_url = cluster.prometheus.url
    kill = parse_rfc3339(st["timeline"]["injectedAt"])
    pods = {v["pod"] for v in st["victims"]}
    assert len(pods) == 2, st["victims"]

    for source in st["detection"]["sources"]:  # a firing time is the server's, never when we looked
        if source["state"] == "Detected":
            assert parse_rfc3339(source["firingAt"]) <= parse_rfc3339(source["seenAt"]), source
    any_alert = _source(st, "any-alert")
    assert any_alert["state"] == "Detected" and any_alert["victim"] in pods, any_alert
    [disk] = [i for i in any_alert.get("ignored") or [] if i["alert"] == "NodeDiskAlmostFull"]
    assert "names neither a victim nor this cluster" in disk["reason"] and "node-exporter" in disk["reason"]
    # It fired first (no for:), yet the detection is the victims' own alert.
    assert parse_rfc3339(disk["firingAt"]) < parse_rfc3339(any_alert["firingAt"]), (disk, any_alert)

    assert pods == set(two), st["victims"]
    for pod in two:  # each victim's own restart alert counts, and names its victim
        restart = _source(st, f"restart-{pod}")
        assert restart["state"] == "Detected" and restart["victim"] == pod, restart

    # The user's rule: its expression (up == 0) held while the stores were away, far shorter
    # than its for:. The explanation's moments are Prometheus' own samples of `up`.
    user = _source(st, "user-rule")
    assert user["state"] == "Missed", user
    down = _samples(prom_url, 'up{job="tikv"}', kill, zero=True)
    assert down, "Prometheus never scraped a victim down"
    why = user["why"]
    assert why.startswith(f"{USER_RULE}: its expression was true from +"), why
    shown_first = float(why.split("true from +", 1)[1].split("s", 1)[0])
    assert abs(shown_first - (down[0] - kill)) <= RESOLUTION, (why, down[0] - kill)
    assert "short of its for: 30s" in why and "needs an outage of at least" in why, why

    # The page: the notification's arrival is after the alert's startsAt by about group_wait.
    page = _source(st, "page")
    assert page["state"] == "Detected" and page["victim"] in pods, page
    delay = parse_rfc3339(page["firingAt"]) - parse_rfc3339(page["alertStartedAt"])
    assert GROUP_WAIT - RESOLUTION <= delay <= GROUP_WAIT + 3.0, (delay, page)
    assert page["ttdSeconds"] == pytest.approx(parse_rfc3339(page["firingAt"]) - kill, abs=0.01)

    # The run's record outlives it; what would have caught the user's miss is replayed in the
    # same Prometheus over the drill's window: a restart rule without `for:` fires at the moment
    # the standard restart rule went pending.
    coverage = asyncio.run(_coverage(env.db_path, prom_url))
    [fault] = coverage.faults
    user_cov = next(s for s in fault.sources if s.source == "user-rule")
    assert (fault.fault, user_cov.drills, user_cov.caught, user_cov.missed) == ("pod-kill", 1, 0, 1)
    restarted = next(p for p in fault.proposals if p.name == "TiKVRestartedRecently")
    assert (restarted.fired, restarted.drills) == (1, 1), restarted
    pending = min(parse_rfc3339(_source(st, f"restart-{pod}")["pendingAt"]) for pod in two)
    assert abs(restarted.delays[0] - (pending - kill)) <= EVALUATION + RESOLUTION, (restarted, pending - kill)


async def _coverage(db: Path, prometheus_url: str):  # type: ignore[no-untyped-def]
    from controller.coverage.collect import Query, collect
    from controller.coverage.proposals import ReplaySettings
    from controller.prom.client import PrometheusClient
    from controller.tickets import TicketDB

    prom = PrometheusClient(prometheus_url)
    try:
        async with TicketDB(db) as tickets:
            query = Query(
                since=0, until=time.time(), replay=ReplaySettings(step=EVALUATION, time_scale=TIME_SCALE)
            )
            return await collect(tickets, query, prom)
    finally:
        await prom.aclose()


def _pd_config(pd_url: str, body: dict) -> None:
    request = urllib.request.Request(
        f"{pd_url}/pd/api/v1/config", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
