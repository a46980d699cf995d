"""A real Alertmanager (Debian's prometheus-alertmanager) that the sandbox's Prometheus sends
its alerts to, so a drill can time what reached the user's alerting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.sandbox.binaries import alertmanager_binary
from controller.sandbox.processes import ManagedProcess, free_port, wait_ready
from controller.sandbox.websecurity import WebSecurity


@dataclass(frozen=True)
class WebhookRoute:
    """Where Alertmanager pages: the controller's webhook receiver, with its bearer token."""

    url: str
    token_file: Path


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def alertmanager_config(webhook: WebhookRoute | None = None, time_scale: float = 1.0) -> dict:
    """One route, grouped by alert name and instance, to the controller's webhook receiver (or to nobody:
    drills then read alerts from the API only). ``group_wait`` and ``group_interval`` are
    Alertmanager's defaults (30 s, 5 m), scaled with the sandbox's other timings."""
    receiver: dict = {"name": "drills"}
    if webhook is not None:
        receiver["webhook_configs"] = [
            {
                "url": webhook.url,
                "send_resolved": False,
                "http_config": {
                    "authorization": {"type": "Bearer", "credentials_file": str(webhook.token_file)}
                },
            }
        ]
    return {
        "route": {
            "receiver": "drills",
            # Per instance: a store's restart pages after group_wait even while another store's
            # restart alert keeps its own group open (grouped by name only, it would wait for
            # that group's group_interval, 5 m).
            "group_by": ["alertname", "instance"],
            "group_wait": _ms(30 * time_scale),
            "group_interval": _ms(300 * time_scale),
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }


@dataclass
class Alertmanager:
    workdir: Path
    port: int = 0
    detached: bool = False
    webhook: WebhookRoute | None = None
    time_scale: float = 1.0
    # HTTPS with client certificates and basic auth (its real --web.config.file).
    web: WebSecurity | None = None
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"{'https' if self.web else 'http'}://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(alertmanager_config(self.webhook, self.time_scale)))
        self.process = ManagedProcess(
            "alertmanager",
            [
                str(alertmanager_binary()),
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance: no gossip port
                "--log.level=warn",
                *([f"--web.config.file={self.web.web_config(self.workdir / 'web.yml')}"] if self.web else []),
            ],
            self.workdir / "alertmanager.log",
            die_with_parent=not self.detached,
        ).start()
        wait_ready(self.process, f"{self.url}/-/ready", opener=self.web.open if self.web else None)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
