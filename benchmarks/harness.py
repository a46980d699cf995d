"""A benchmark stack: control plane, emulated TiKV clusters, monitors, one controller."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controller.sandbox.controlplane import ControlPlane
from controller.sandbox.processes import ManagedProcess, free_port
from controller.sandbox.services import controller_process, monitor_process
from controller.sandbox.tikv import TikvCluster
from controller.tickets import TicketDB

REPO_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def control_plane() -> Iterator[ControlPlane]:
    with (
        tempfile.TemporaryDirectory(prefix="chaosdemo-bench-") as tmp,
        ControlPlane(workdir=Path(tmp) / "cp") as cp,
    ):
        cp.kubectl("apply", "-f", str(REPO_ROOT / "crds" / "chaosdemo.yaml"))
        cp.wait_established("chaosdemos.chaos.operator.dev")
        yield cp


def start_monitor(
    cluster: TikvCluster, db: Path, interval: float, *, prometheus: bool = True
) -> ManagedProcess:
    return monitor_process(
        pd_url=cluster.pd_url,
        db=db,
        interval=interval,
        name=f"monitor-{cluster.namespace}",
        prometheus_url=cluster.prometheus.url if prometheus and cluster.prometheus else "",
        log_path=cluster.workdir / "monitor.log",
    ).start()


def start_controller(
    cp: ControlPlane,
    workdir: Path,
    db: Path,
    pd_url: str,
    prometheus_url: str = "",
    metrics_port: int = 0,
    step_interval: float = 0.5,
    extra_env: dict[str, str] | None = None,
) -> ManagedProcess:
    return controller_process(
        kubeconfig=cp.kubeconfig,
        pd_url=pd_url,
        prometheus_url=prometheus_url,
        db=db,
        log_path=workdir / "controller.log",
        env={
            "CHAOSDEMO_METRICS_PORT": str(metrics_port or free_port()),
            "CHAOSDEMO_STEP_INTERVAL": str(step_interval),
            **(extra_env or {}),
        },
    ).start()


def opt_in(cp: ControlPlane, namespace: str) -> None:
    cp.kubectl("annotate", "namespace", namespace, "chaos.operator.dev/enabled=true", "--overwrite")


def chaosdemo_status(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "chaosdemo", name, "-n", namespace, "-o", "json", check=False).stdout
    return (json.loads(out).get("status") or {}) if out else {}


def run_drill(
    cp: ControlPlane, namespace: str, name: str, spec: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Apply one ChaosDemo and wait for it to end; its final status."""
    doc = {"apiVersion": "chaos.operator.dev/v1alpha1", "kind": "ChaosDemo", "metadata": {"name": name}}
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({**doc, "spec": spec}))
    ended = {"Completed", "Failed", "Aborted"}
    assert wait(lambda: chaosdemo_status(cp, namespace, name).get("phase") in ended, timeout, interval=1)
    return chaosdemo_status(cp, namespace, name)


def wait(predicate, timeout: float, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def no_open_tickets(db_path: Path) -> bool:
    """The monitor has no incident open: a drill's preflight would refuse one (OpenTicket)."""

    async def count() -> int:
        async with TicketDB(db_path) as db:
            return len(await db.open_tickets())

    return asyncio.run(count()) == 0
