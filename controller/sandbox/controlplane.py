"""Start and stop a real Kubernetes control plane as local processes.

etcd -> kube-apiserver (TLS, RBAC, service-account signing) -> kube-controller-manager (the real
StatefulSet and garbage-collector controllers, each with its own service-account credentials)
-> kube-scheduler -> kwok (simulated nodes that make scheduled pods Running and Ready).

The harness is synchronous on purpose: it manages processes for pytest fixtures and for
``chaosdemo sandbox``; none of it runs on the operator's event loop.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from controller.sandbox.binaries import binary, require_all
from controller.sandbox.pki import Pki, make_pki
from controller.sandbox.processes import ManagedProcess, ProcessExited, free_port, wait_until

KWOK_CONFIG = Path(__file__).with_name("kwok.yaml")
SERVICE_CIDR = "10.0.0.0/24"
NODE_ANNOTATION = "kwok.x-k8s.io/node"


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    user: str = "admin",
) -> Path:
    user_entry: dict[str, str] = {}
    if cert and key:
        user_entry = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        user_entry = {"token": token}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "chaosdemo-sandbox", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [
            {"name": f"{user}@chaosdemo-sandbox", "context": {"cluster": "chaosdemo-sandbox", "user": user}}
        ],
        "current-context": f"{user}@chaosdemo-sandbox",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class ControlPlane:
    """A running control plane. Use as a context manager or call start()/stop()."""

    workdir: Path | None = None
    node_count: int = 3
    keep_workdir: bool = False
    detached: bool = False  # True: the processes outlive this Python process (the sandbox)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    pki: Pki | None = None
    apiserver_port: int = 0
    etcd_port: int = 0
    _own_workdir: bool = False

    # -- paths -------------------------------------------------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "kubeconfig"

    @property
    def logs(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "logs"

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ControlPlane:
        require_all()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="chaosdemo-cp-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.pki = make_pki(self.workdir / "pki")
            write_kubeconfig(self.kubeconfig, "https://127.0.0.1:0", self.pki.ca_cert)  # placeholder
            self._start_etcd()
            self._start_apiserver()
            write_kubeconfig(
                self.kubeconfig,
                self.server,
                self.pki.ca_cert,
                cert=self.pki.admin_cert,
                key=self.pki.admin_key,
            )
            self._start_controllers()
            self._create_nodes()
            wait_until(self._nodes_ready, timeout=60, what=f"{self.node_count} kwok nodes Ready")
            wait_until(self._default_service_account, timeout=60, what="the default ServiceAccount")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()
        if self._own_workdir and self.workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.pid is not None}

    # -- individual components ---------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(
            name, argv, self.logs / f"{name}.log", die_with_parent=not self.detached
        ).start()
        self.processes[name] = proc
        return proc

    def _start_etcd(self) -> None:
        assert self.workdir is not None
        self.etcd_port, peer = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(binary("etcd")),
                "--name",
                "sandbox",
                "--data-dir",
                str(self.workdir / "etcd"),
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"sandbox=http://127.0.0.1:{peer}",
                # A throw-away store: fsync buys nothing here and costs seconds per test.
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
        )
        wait_until(
            lambda: self._http_ok(f"http://127.0.0.1:{self.etcd_port}/health"),
            30,
            what="etcd health",
        )

    def apiserver_argv(self) -> list[str]:
        assert self.pki is not None
        return [
            str(binary("kube-apiserver")),
            "--etcd-servers",
            f"http://127.0.0.1:{self.etcd_port}",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(self.apiserver_port),
            "--tls-cert-file",
            str(self.pki.server_cert),
            "--tls-private-key-file",
            str(self.pki.server_key),
            "--client-ca-file",
            str(self.pki.ca_cert),
            "--authorization-mode",
            "Node,RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            str(self.pki.sa_pub),
            "--service-account-signing-key-file",
            str(self.pki.sa_key),
            "--service-cluster-ip-range",
            SERVICE_CIDR,
            "--allow-privileged=true",
            "--v",
            "1",
        ]

    def _start_apiserver(self) -> None:
        self.apiserver_port = self.apiserver_port or free_port()
        self._spawn("kube-apiserver", self.apiserver_argv())
        wait_until(self._apiserver_ready, 90, what="kube-apiserver /readyz")

    def restart_apiserver(self, down_seconds: float = 0.0) -> None:
        """Stop and start kube-apiserver on the same port (for dependency-fault tests). The
        scheduler is restarted after it: its cache can go stale across an API server restart
        ("Scheduler cache is corrupted") and it then stops placing new pods, for every later
        test that shares this control plane."""
        import time

        self.processes.pop("kube-apiserver").stop()
        time.sleep(down_seconds)
        self._start_apiserver()
        scheduler = self.processes.pop("kube-scheduler")
        scheduler.stop()
        self._spawn("kube-scheduler", list(scheduler.argv))

    def _start_controllers(self) -> None:
        assert self.pki is not None and self.workdir is not None
        kc = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                str(binary("kube-controller-manager")),
                "--kubeconfig",
                kc,
                "--authentication-kubeconfig",
                kc,
                "--authorization-kubeconfig",
                kc,
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                "--service-account-private-key-file",
                str(self.pki.sa_key),
                "--root-ca-file",
                str(self.pki.ca_cert),
                "--cluster-name",
                "chaosdemo-sandbox",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                # Faster StatefulSet reaction is not configurable; these keep node eviction sane
                # for simulated nodes whose leases kwok renews.
                "--node-monitor-grace-period",
                "60s",
                "--v",
                "1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(binary("kube-scheduler")),
                "--kubeconfig",
                kc,
                "--authentication-kubeconfig",
                kc,
                "--authorization-kubeconfig",
                kc,
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                "--v",
                "1",
            ],
        )
        self._spawn(
            "kwok",
            [
                str(binary("kwok")),
                "--kubeconfig",
                kc,
                "--config",
                str(KWOK_CONFIG),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector",
                f"{NODE_ANNOTATION}=fake",
                "--cidr",
                "10.244.0.0/16",
                "--node-ip",
                "10.96.0.10",
                "--server-address",
                f"127.0.0.1:{free_port()}",
            ],
        )

    def _create_nodes(self) -> None:
        for i in range(self.node_count):
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"kwok-node-{i}",
                    "annotations": {NODE_ANNOTATION: "fake"},
                    "labels": {
                        "kubernetes.io/hostname": f"kwok-node-{i}",
                        "type": "kwok",
                        "topology.kubernetes.io/zone": f"zone-{i % 3}",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                },
            }
            self.kubectl("apply", "-f", "-", input=json.dumps(node))

    # -- helpers -----------------------------------------------------------------------------
    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Until each CustomResourceDefinition is Established. (`kubectl wait` fails outright,
        instead of waiting, when it reads a CRD the API server has not yet given conditions.)"""

        def established() -> bool:
            for crd in crds:
                out = self.kubectl(
                    "get",
                    "crd",
                    crd,
                    "-o",
                    'jsonpath={.status.conditions[?(@.type=="Established")].status}',
                    check=False,
                )
                if out.returncode != 0 or out.stdout.strip() != "True":
                    return False
            return True

        wait_until(established, timeout, what=f"CRDs {', '.join(crds)} Established")

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(binary("kubectl")), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _apiserver_ready(self) -> bool:
        proc = self.processes.get("kube-apiserver")
        if proc and not proc.alive():
            raise ProcessExited(f"kube-apiserver exited:\n{proc.log_tail()}")
        with urllib.request.urlopen(f"{self.server}/readyz", context=self._ssl_context(), timeout=2) as r:
            return bool(r.status == 200)

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)

    def _nodes_ready(self) -> bool:
        out = self.kubectl("get", "nodes", "-o", "json").stdout
        nodes = json.loads(out)["items"]
        ready = [
            n
            for n in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= self.node_count

    def _default_service_account(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0
