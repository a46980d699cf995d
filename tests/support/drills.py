"""A drill environment for integration tests: an emulated TiKV cluster (emulator + real
Prometheus) in an opted-in namespace, the monitor and the controller as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from controller.sandbox.binaries import REPO_ROOT, binary
from controller.sandbox.controlplane import ControlPlane, write_kubeconfig
from controller.sandbox.processes import ManagedProcess, free_port, wait_ready
from controller.sandbox.services import controller_process, monitor_process
from controller.sandbox.tikv import TikvCluster


def patience(seconds: float) -> float:
    """How long a test waits for something that normally takes a fraction of ``seconds``.

    A wait's deadline is not a claim about speed (figures are compared with the truth, never
    with a window): it only bounds how long a broken run hangs. A slow or loaded machine
    stretches every wait, so deadlines are generous and scale with
    ``CHAOSDEMO_TEST_PATIENCE`` (default 3) for machines slower still."""
    return seconds * float(os.environ.get("CHAOSDEMO_TEST_PATIENCE", "3"))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something true; ``timeout`` is stretched by
    :func:`patience`."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class PodHistory:
    """Polls the target's pods and remembers every uid each pod name ever had."""

    def __init__(self, cluster: TikvCluster) -> None:
        self.cluster = cluster
        self.uids: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _poll(self) -> None:
        for pod in self.cluster.tikv_pods():
            seen = self.uids.setdefault(pod["metadata"]["name"], [])
            if pod["metadata"]["uid"] not in seen:
                seen.append(pod["metadata"]["uid"])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            time.sleep(0.1)

    def __enter__(self) -> PodHistory:
        self._poll()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._poll()

    def replaced(self) -> dict[str, int]:
        """Pod name -> how many times it was replaced (deleted and recreated)."""
        return {name: len(uids) - 1 for name, uids in self.uids.items() if len(uids) > 1}


class PodFieldHistory:
    """Every value one pod's field had, in order, with when the watch delivered it, from a watch
    on the real API server (each change is an event, however quickly another follows). Another
    kind's object (``kind``) the same way; a field that is not set reads as ''."""

    def __init__(self, cluster: TikvCluster, pod: str, field_path: str, kind: str = "pod") -> None:
        self.cluster, self.pod, self.field_path, self.kind = cluster, pod, field_path, kind
        self.changes: list[tuple[float, str, str]] = []  # (arrived, uid, value), repeats dropped
        self._proc: subprocess.Popen[str] | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Self:
        cp = self.cluster.control_plane
        template = f'{{.metadata.uid}} ={{{self.field_path}}}{{"\\n"}}'
        self._proc = subprocess.Popen(
            [
                *(str(binary("kubectl")), "--kubeconfig", str(cp.kubeconfig)),
                *(
                    "get",
                    self.kind,
                    self.pod,
                    "-n",
                    self.cluster.namespace,
                    "--watch",
                    "-o",
                    f"jsonpath={template}",
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._thread.start()
        wait_for(lambda: self.changes, 10, f"the watch on {self.pod} to start")
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            arrived = time.time()
            uid, _, value = line.strip().partition(" =")
            if uid and (not self.changes or self.changes[-1][1:] != (uid, value)):
                self.changes.append((arrived, uid, value))

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # let the watch deliver the last change
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
        self._thread.join(5)

    def sequence(self) -> list[str]:
        return [value for _, _, value in self.changes]


class ImageHistory(PodFieldHistory):
    """Every image one pod's container had, in order."""

    def __init__(self, cluster: TikvCluster, pod: str, container: str = "tikv") -> None:
        super().__init__(cluster, pod, f'.spec.containers[?(@.name=="{container}")].image')

    @property
    def images(self) -> list[tuple[str, str]]:
        return [(uid, image) for _, uid, image in self.changes]


@dataclass
class DrillEnv:
    cluster: TikvCluster
    workdir: Path
    monitor_interval: float = 0.3
    controller_env: dict[str, str] = field(default_factory=dict)
    monitor: ManagedProcess | None = None
    controller: ManagedProcess | None = None

    @property
    def ns(self) -> str:
        return self.cluster.namespace

    @property
    def db_path(self) -> Path:
        return self.workdir / "tickets.db"

    def kubectl(self, *args: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.cluster.control_plane.kubectl(*args, **kw)

    def start_monitor(self, *, metrics_port: int = 0, health_port: int = 0) -> None:
        """Start the monitor and return once it is ready: it knows the cluster and has finished
        a cycle, so its baseline (every store's start time) predates anything the test breaks
        next. A test that broke something before the baseline would race the monitor's start,
        which on a slow machine takes seconds (importing the package alone)."""
        health_port = health_port or free_port()
        self.monitor = monitor_process(
            pd_url=self.cluster.pd_url,
            prometheus_url=self.cluster.prometheus.url if self.cluster.prometheus else "",
            db=self.db_path,
            interval=self.monitor_interval,
            log_path=self.workdir / "monitor.log",
            metrics_port=metrics_port,
            health_port=health_port,
            env=self.cluster.credentials_env(),
        ).start()
        wait_ready(self.monitor, f"http://127.0.0.1:{health_port}/readyz", timeout=patience(60))

    def stop_monitor(self) -> None:
        if self.monitor:
            self.monitor.stop()

    def start_controller(self, *more_namespaces: str, wait: bool = True, **extra_env: str) -> ManagedProcess:
        """Start the controller and (unless ``wait`` is false: a controller meant to crash may
        die before it serves) return once kopf serves its liveness endpoint, which it does only
        after its startup handlers ran."""
        chosen = {**self.controller_env, **extra_env}.get("CHAOSDEMO_HEALTH_PORT")
        health_port = int(chosen) if chosen else free_port()
        self.controller = controller_process(
            kubeconfig=self.cluster.control_plane.kubeconfig,
            pd_url=self.cluster.pd_url,
            prometheus_url=self.cluster.prometheus.url if self.cluster.prometheus else "",
            db=self.db_path,
            log_path=self.workdir / "controller.log",
            namespaces=[self.ns, *more_namespaces],
            env={
                "CHAOSDEMO_STEP_INTERVAL": "0.3",
                "CHAOSDEMO_HEALTH_PORT": str(health_port),
                # TiKV's client (the prober) reaches stores by the names they advertise.
                **self.cluster.client_env(),
                **self.cluster.credentials_env(),
                **self.controller_env,
                **extra_env,
            },
        ).start()
        if wait:
            wait_ready(self.controller, f"http://127.0.0.1:{health_port}/healthz", timeout=patience(60))
        return self.controller

    def kill_controller(self) -> None:
        if self.controller:
            self.controller.kill(signal.SIGKILL)
            assert self.controller.popen is not None
            self.controller.popen.wait(10)

    def stop(self) -> None:
        for proc in (self.controller, self.monitor):
            if proc:
                proc.stop()

    # -- ChaosDemo helpers ----------------------------------------------------------------------------
    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-n", self.ns, "-f", "-", input=manifest)

    def drill(self, name: str, spec: dict[str, Any] | None = None) -> None:
        body = {
            "apiVersion": "chaos.operator.dev/v1alpha1",
            "kind": "ChaosDemo",
            "metadata": {"name": name},
            "spec": spec or {},
        }
        self.apply(json.dumps(body))

    def get(self, name: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", "chaosdemo", name, "-n", self.ns, "-o", "json").stdout)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_phase(self, name: str, phases: set[str], timeout: float = 60) -> dict[str, Any]:
        def check():  # type: ignore[no-untyped-def]
            st = self.status(name)
            return st if st.get("phase") in phases else None

        try:
            return wait_for(check, timeout, f"{name} to reach {sorted(phases)}")  # type: ignore[no-any-return]
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nstatus: {json.dumps(self.status(name), indent=1)}\n"
                f"controller log:\n{self.controller.log_tail(40) if self.controller else ''}"
            ) from exc

    def open_tickets(self) -> int:
        import asyncio

        from controller.tickets import TicketDB

        async def count() -> int:
            async with TicketDB(self.db_path) as db:
                return len(await db.open_tickets())

        return asyncio.run(count())

    def wait_no_open_tickets(self, timeout: float = 30) -> None:
        wait_for(lambda: self.open_tickets() == 0, timeout, "the monitor to resolve every ticket")

    def ready_pods(self) -> int:
        return len(self.cluster.ready_tikv_pods())


def opt_in(cluster: TikvCluster) -> None:
    cluster.control_plane.kubectl(
        "annotate", "namespace", cluster.namespace, "chaos.operator.dev/enabled=true", "--overwrite"
    )


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def started_drill_env(cluster: TikvCluster, workdir: Path, **controller_env: str) -> DrillEnv:
    """The cluster opted in, with the monitor and the controller running (extra controller env)."""
    opt_in(cluster)
    env = DrillEnv(cluster=cluster, workdir=workdir, controller_env=dict(controller_env))
    env.workdir.mkdir()
    env.start_monitor()
    env.start_controller()
    return env


def claude_drill_env(cluster: TikvCluster, workdir: Path, api_url: str, **controller_env: str) -> DrillEnv:
    """A started drill environment whose controller diagnoses through a local Messages API."""
    return started_drill_env(
        cluster,
        workdir,
        ANTHROPIC_API_KEY="sk-ant-test-not-a-real-key-000000",
        ANTHROPIC_BASE_URL=api_url,
        **controller_env,
    )


def service_account_kubeconfig(cp: ControlPlane, namespace: str, name: str, path: Path) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (a 2 h token): to run the controller
    with exactly the rights its manifests grant."""
    token = cp.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()
    assert cp.pki is not None
    return write_kubeconfig(path, cp.server, cp.pki.ca_cert, token=token, user=name)


def example_drill_as(cluster: TikvCluster, kubeconfig: Path, workdir: Path) -> tuple[dict[str, Any], str]:
    """The repository's example drill, with the controller authenticated by ``kubeconfig`` (a
    ServiceAccount's): the drill's final status and the controller's log."""
    env = DrillEnv(cluster=cluster, workdir=workdir, controller_env={"KUBECONFIG": str(kubeconfig)})
    env.workdir.mkdir()
    env.start_monitor()
    env.start_controller()
    try:
        env.kubectl("apply", "-n", env.ns, "-f", str(REPO_ROOT / "chaosdemo.yaml"))
        status = env.wait_phase("tikv-pod-kill", {"Completed", "Failed", "Aborted"}, timeout=90)
        return status, env.controller.log_tail(400) if env.controller else ""
    finally:
        env.stop()


def wait_stores_aged(stores: Callable[[], list[dict[str, Any]]], timeout: float = 60) -> None:
    """A store started shortly before a ticket reads as restarted (facts.RESTART_SLACK_BEFORE_TICKET):
    let a fresh cluster age past it, as any cluster a drill runs on has. ``stores``: PD's
    /pd/api/v1/stores list, read however the cluster's PD is reached."""
    from controller.diagnosis.facts import RESTART_SLACK_BEFORE_TICKET

    wait_for(
        lambda: all(
            time.time() - s["store"]["start_timestamp"] > RESTART_SLACK_BEFORE_TICKET + 1 for s in stores()
        ),
        timeout,
        "the stores to age",
        interval=1.0,
    )
