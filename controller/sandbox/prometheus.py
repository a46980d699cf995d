"""A real Prometheus (Debian's package) scraping PD and every emulated TiKV store."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.sandbox.binaries import prometheus_binary
from controller.sandbox.processes import ManagedProcess, free_port, wait_ready
from controller.sandbox.websecurity import WebSecurity

# The TiKV/PD alert rules the sandbox loads (also shipped with the kind manifests).
ALERT_RULES = Path(__file__).resolve().parents[2] / "manifests" / "prometheus" / "alert-rules.yml"
# The alert rules about ChaosDemo itself (shipped with the manifests and the chart).
CHAOSDEMO_RULES = ALERT_RULES.with_name("chaosdemo-rules.yml")


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def scaled_alert_rules(source: Path, time_scale: float, destination: Path) -> Path:
    """The rules of ``source`` with every ``for:`` multiplied by ``time_scale``, written to
    ``destination``; ``source`` itself when the scale is 1.

    The emulator runs PD's and TiKV's timings (heartbeats, Disconnected after 20 s, elections)
    scaled by one factor; a rule's ``for:`` is the same kind of duration, so a scaled sandbox
    scales it too and every ratio stays real (Disconnected 20 s, then ``for: 1m``, becomes 4 s
    then 12 s at 0.2). Expressions are left exactly as written: their range windows only bound
    how long an alert stays firing afterwards."""
    if time_scale == 1:
        return source
    from controller.alerting.matching import parse_go_duration

    rules = yaml.safe_load(source.read_text())
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule:
                rule["for"] = _ms(parse_go_duration(rule["for"]) * time_scale)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(
        f"# {source.name} with every `for:` scaled by {time_scale} (controller/sandbox/prometheus.py)\n"
        + yaml.safe_dump(rules, sort_keys=False)
    )
    return destination


def scrape_config(
    pd_address: str,
    targets_file: Path,
    interval_seconds: float,
    *,
    evaluation_seconds: float | None = None,
    rule_files: tuple[Path, ...] = (),
    alertmanager: str = "",
    extra_jobs: tuple[tuple[str, str], ...] = (),
    pd_tls: dict[str, str] | None = None,
    alertmanager_access: dict[str, Any] | None = None,
) -> dict:
    """``pd_tls``: PD's port serves mutual TLS (Prometheus' tls_config for it);
    ``alertmanager_access``: the scheme, TLS and auth Alertmanager wants."""
    interval = _ms(interval_seconds)
    pd_job: dict[str, Any] = {"job_name": "pd", "static_configs": [{"targets": [pd_address]}]}
    if pd_tls is not None:
        pd_job |= {"scheme": "https", "tls_config": pd_tls}
    config: dict = {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": _ms(evaluation_seconds or interval_seconds),
        },
        "scrape_configs": [
            pd_job,
            # File-based discovery: the emulator rewrites the file as stores appear, the way
            # Kubernetes service discovery would follow pods.
            {
                "job_name": "tikv",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            },
        ],
    }
    for job, address in extra_jobs:  # e.g. the controller's own /metrics
        config["scrape_configs"].append({"job_name": job, "static_configs": [{"targets": [address]}]})
    if rule_files:
        config["rule_files"] = [str(f) for f in rule_files]
    if alertmanager:
        config["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager]}], **(alertmanager_access or {})}
            ]
        }
    return config


@dataclass
class Prometheus:
    workdir: Path
    pd_address: str
    targets_file: Path
    scrape_interval: float = 1.0
    evaluation_interval: float | None = None
    rule_files: tuple[Path, ...] = ()
    alertmanager: str = ""  # host:port of the Alertmanager to send alerts to
    extra_jobs: tuple[tuple[str, str], ...] = ()  # (job name, host:port) scraped as well
    # HTTPS with client certificates and basic auth (and PD scraped over mutual TLS).
    web: WebSecurity | None = None
    # Alertmanager serves HTTPS too: Prometheus sends to it with the same certificate and user.
    alertmanager_web: bool = False
    port: int = 0
    detached: bool = False
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.web else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if not self.targets_file.exists():
            self.targets_file.write_text("[]")
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(
            yaml.safe_dump(
                scrape_config(
                    self.pd_address,
                    self.targets_file,
                    self.scrape_interval,
                    evaluation_seconds=self.evaluation_interval,
                    rule_files=self.rule_files,
                    alertmanager=self.alertmanager,
                    extra_jobs=self.extra_jobs,
                    pd_tls=self.web.tls_config() if self.web else None,
                    alertmanager_access=(
                        self.web.client_side(self.workdir / "alertmanager-password")
                        if self.web and self.alertmanager_web
                        else None
                    ),
                )
            )
        )
        web_args = [f"--web.config.file={self.web.web_config(self.workdir / 'web.yml')}"] if self.web else []
        self.process = ManagedProcess(
            "prometheus",
            [
                str(prometheus_binary()),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=2h",
                "--web.enable-lifecycle",
                "--log.level=warn",
                *web_args,
            ],
            self.workdir / "prometheus.log",
            die_with_parent=not self.detached,
        ).start()
        wait_ready(self.process, f"{self.url}/-/ready", opener=self.open)
        return self

    def open(self, url: str, timeout: float = 5) -> Any:
        return self.web.open(url, timeout) if self.web else urllib.request.urlopen(url, timeout=timeout)

    def query(self, promql: str) -> list[dict]:
        from urllib.parse import urlencode

        with self.open(f"{self.url}/api/v1/query?{urlencode({'query': promql})}") as r:
            return list(json.load(r)["data"]["result"])

    def stop(self) -> None:
        if self.process:
            self.process.stop()
