"""The monitor and the controller as local processes, the one way the sandbox, the tests and
the benchmarks start them."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from controller.sandbox.processes import ManagedProcess


def monitor_process(
    *,
    pd_url: str,
    prometheus_url: str,
    db: Path,
    interval: float,
    log_path: Path,
    name: str = "monitor",
    detached: bool = False,
    metrics_port: int = 0,
    health_port: int = 0,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    argv = [
        sys.executable,
        "-m",
        "controller.cli",
        "monitor",
        "--pd-address",
        pd_url,
        "--db",
        str(db),
        "--interval",
        str(interval),
    ]
    if prometheus_url:
        argv += ["--prometheus-url", prometheus_url]
    if metrics_port:
        argv += ["--metrics-port", str(metrics_port)]
    if health_port:
        argv += ["--health-port", str(health_port)]
    return ManagedProcess(name, argv, log_path, env=env, die_with_parent=not detached)


def controller_process(
    *,
    kubeconfig: Path,
    pd_url: str,
    prometheus_url: str,
    db: Path,
    log_path: Path,
    namespaces: Sequence[str] = (),
    env: dict[str, str] | None = None,
    detached: bool = False,
) -> ManagedProcess:
    argv = [sys.executable, "-m", "controller.cli", "controller"]
    for ns in namespaces:
        argv += ["--namespace", ns]
    return ManagedProcess(
        "controller",
        argv,
        log_path,
        env={
            "KUBECONFIG": str(kubeconfig),
            "CHAOSDEMO_PD_ADDRESS": pd_url,
            "CHAOSDEMO_PROMETHEUS_URL": prometheus_url,
            "CHAOSDEMO_DB": str(db),
            **(env or {}),
        },
        die_with_parent=not detached,
    )
