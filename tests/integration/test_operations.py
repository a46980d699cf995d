"""What an operator in production needs, against the real processes: liveness and readiness
endpoints for the controller and the monitor, and a dashboard and alert rules whose every query
names a metric the controller or the monitor really exports on /metrics."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from controller.sandbox.processes import free_port
from controller.sandbox.services import monitor_process
from tests.support.drills import DrillEnv, wait_for

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "manifests" / "monitoring" / "chaosdemo-dashboard.json"
RULES = REPO_ROOT / "manifests" / "prometheus" / "chaosdemo-rules.yml"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def exported_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics page can carry, from its TYPE lines (a labelled metric that
    has not been observed yet still has one)."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", metrics_text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if kind == "counter" and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names


def queried_names(text: str) -> set[str]:
    return set(re.findall(r"\b(chaosdemo_[a-z0-9_]+)", text))


def test_probes_and_every_dashboard_and_rule_metric_is_exported(drill_env: DrillEnv) -> None:
    env = drill_env
    ports = {
        name: free_port()
        for name in ("controller_metrics", "controller_health", "monitor_metrics", "monitor_health")
    }
    env.kill_controller()
    env.start_controller(
        CHAOSDEMO_METRICS_PORT=str(ports["controller_metrics"]),
        CHAOSDEMO_HEALTH_PORT=str(ports["controller_health"]),
    )
    env.stop_monitor()
    env.start_monitor(metrics_port=ports["monitor_metrics"], health_port=ports["monitor_health"])

    def url(port: str, path: str) -> str:
        return f"http://127.0.0.1:{ports[port]}{path}"

    status, body = wait_for(
        lambda: (r := _get(url("controller_health", "/healthz")))[0] == 200 and r, 30, "controller /healthz"
    )
    assert "event_loop_lag_seconds" in json.loads(body), body
    wait_for(lambda: _get(url("monitor_health", "/readyz"))[0] == 200, 30, "monitor /readyz")
    status, body = _get(url("monitor_health", "/healthz"))
    assert status == 200 and json.loads(body)["alive"] is True
    assert json.loads(_get(url("monitor_health", "/readyz"))[1])["cluster"] == env.cluster.ticket_cluster

    exported = exported_names(_get(url("controller_metrics", "/metrics"))[1]) | exported_names(
        _get(url("monitor_metrics", "/metrics"))[1]
    )
    assert "chaosdemo_drills_total" in exported and "chaosdemo_monitor_cycles_total" in exported

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10 and all(t.get("refId") for p in dashboard["panels"] for t in p["targets"])
    assert {"chaosdemo_source_time_to_detect_seconds_bucket", "chaosdemo_time_to_recover_seconds_bucket"} <= (
        queried_names(" ".join(exprs))
    )
    rules = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    missing = {
        where: sorted(queried_names(text) - exported)
        for where, text in {"dashboard": " ".join(exprs), "rules": " ".join(rules)}.items()
        if queried_names(text) - exported
    }
    assert not missing, f"queries name metrics nobody exports: {missing}"


def test_a_monitor_waiting_for_pd_is_alive_but_not_ready(tmp_path: Path) -> None:
    health = free_port()
    monitor = monitor_process(
        pd_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        prometheus_url="",
        db=tmp_path / "tickets.db",
        interval=1.0,
        log_path=tmp_path / "monitor.log",
        health_port=health,
    ).start()
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{health}/healthz")[0] == 200, 20, "monitor /healthz")
        status, body = _get(f"http://127.0.0.1:{health}/readyz")
        assert status == 503 and json.loads(body)["ready"] is False and json.loads(body)["cluster"] is None
    finally:
        monitor.stop()
