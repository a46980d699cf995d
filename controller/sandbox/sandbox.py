"""``chaosdemo sandbox``: the whole stack as background processes, for the demo without Docker.

up: control plane -> CRD -> a TiKV cluster (PD + TiKV StatefulSets in namespace ``tikv``, opted in)
-> the emulator and Prometheus -> the monitor and the controller. Every process writes its log
to ``<dir>/logs``; their pids go to ``<dir>/sandbox.json`` so that ``down`` can stop them all.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from controller.sandbox.binaries import REPO_ROOT
from controller.sandbox.controlplane import ControlPlane
from controller.sandbox.processes import ManagedProcess
from controller.sandbox.services import controller_process, monitor_process
from controller.sandbox.tikv import TikvCluster

STATE_FILE = "sandbox.json"
NAMESPACE = "tikv"
CRDS = REPO_ROOT / "crds"  # a kustomization: ChaosDemo and ChaosDemoSchedule


def default_dir() -> Path:
    return Path(os.environ.get("CHAOSDEMO_SANDBOX_DIR", Path.home() / ".chaosdemo" / "sandbox"))


@dataclass
class SandboxState:
    directory: str
    kubeconfig: str
    pd_url: str
    prometheus_url: str
    emulator_admin_url: str
    tickets_db: str
    namespace: str
    alertmanager_url: str = ""
    # What a process running TiKV's client needs here (the sandbox's stand-in for cluster DNS).
    client_env: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    def save(self) -> None:
        Path(self.directory, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: Path | None = None) -> SandboxState | None:
        path = (directory or default_dir()) / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not running.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def up(
    directory: Path | None = None,
    *,
    time_scale: float = 1.0,
    scrape_interval: float = 1.0,
    monitor_interval: float = 1.0,
    log: Callable[[str], None] = print,
) -> SandboxState:
    directory = directory or default_dir()
    existing = SandboxState.load(directory)
    if existing and any(alive(p) for p in existing.pids.values()):
        raise RuntimeError(f"a sandbox is already running in {directory}; `chaosdemo sandbox down` first")
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / "logs"
    log("starting the control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
    cp = ControlPlane(workdir=directory / "control-plane", keep_workdir=True, detached=True)
    cp.start()
    started: list[ManagedProcess] = list(cp.processes.values())
    try:
        cp.kubectl("apply", "-k", str(CRDS))
        cp.wait_established("chaosdemos.chaos.operator.dev")
        log(
            "deploying PD and TiKV StatefulSets in namespace tikv; starting the emulator, Prometheus with "
            "the standard TiKV/PD alert rules, and Alertmanager"
        )
        cluster = TikvCluster(
            control_plane=cp,
            workdir=directory / "tikv",
            namespace=NAMESPACE,
            time_scale=time_scale,
            scrape_interval=scrape_interval,
            with_alerting=True,
            detached=True,
        )
        cluster.start()
        assert cluster.emulator and cluster.prometheus and cluster.prometheus.process and cluster.alertmanager
        assert cluster.alertmanager.process
        started += [cluster.emulator, cluster.alertmanager.process, cluster.prometheus.process]
        cp.kubectl("annotate", "namespace", NAMESPACE, "chaos.operator.dev/enabled=true", "--overwrite")
        db = directory / "tickets.db"
        log("starting the monitor and the controller")
        monitor = monitor_process(
            pd_url=cluster.pd_url,
            prometheus_url=cluster.prometheus.url,
            db=db,
            interval=monitor_interval,
            log_path=logs / "monitor.log",
            detached=True,
        ).start()
        started.append(monitor)
        controller = controller_process(
            kubeconfig=cp.kubeconfig,
            pd_url=cluster.pd_url,
            prometheus_url=cluster.prometheus.url,
            db=db,
            log_path=logs / "controller.log",
            # TiKV's client (the drills' prober) reaches the stores by the names they advertise.
            env={**cluster.alerting_env(), **cluster.client_env()},
            detached=True,
        ).start()
        started.append(controller)
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        raise
    state = SandboxState(
        directory=str(directory),
        kubeconfig=str(cp.kubeconfig),
        pd_url=cluster.pd_url,
        prometheus_url=cluster.prometheus.url,
        emulator_admin_url=cluster.admin_url,
        alertmanager_url=cluster.alertmanager.url,
        client_env=cluster.client_env(),
        tickets_db=str(db),
        namespace=NAMESPACE,
        pids={p.name: p.pid for p in started if p.pid},
        started_at=time.time(),
    )
    state.save()
    return state


def down(directory: Path | None = None, timeout: float = 15.0) -> list[str]:
    """Stop every sandbox process (TERM, then KILL). Returns the names of those it stopped."""
    directory = directory or default_dir()
    state = SandboxState.load(directory)
    if state is None:
        return []
    stopped = []
    # Reverse start order: the controller and monitor before what they talk to.
    for name, pid in reversed(list(state.pids.items())):
        if not alive(pid):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    leftovers = [n for n, p in state.pids.items() if alive(p)]
    if leftovers:
        raise RuntimeError(f"could not stop: {', '.join(leftovers)}")
    (directory / STATE_FILE).unlink()
    return stopped


def status(directory: Path | None = None) -> tuple[SandboxState | None, dict[str, bool]]:
    state = SandboxState.load(directory)
    if state is None:
        return None, {}
    return state, {name: alive(pid) for name, pid in state.pids.items()}
