"""A real Alertmanager (Debian's prometheus-alertmanager) that the sandbox's Prometheus sends
its alerts to, so a drill can time what reached the user's alerting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.sandbox.binaries import alertmanager_binary
from controller.sandbox.processes import ManagedProcess, free_port, wait_ready


def alertmanager_config() -> dict:
    """One route to a receiver that notifies nobody: drills read alerts from the API."""
    return {
        "route": {
            "receiver": "drills",
            "group_by": ["alertname"],
            "group_wait": "10s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "drills"}],
    }


@dataclass
class Alertmanager:
    workdir: Path
    port: int = 0
    detached: bool = False
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(alertmanager_config()))
        self.process = ManagedProcess(
            "alertmanager",
            [
                str(alertmanager_binary()),
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance: no gossip port
                "--log.level=warn",
            ],
            self.workdir / "alertmanager.log",
            die_with_parent=not self.detached,
        ).start()
        wait_ready(self.process, f"{self.url}/-/ready")
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()
