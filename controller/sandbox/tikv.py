"""The emulated TiKV cluster next to a control plane: objects, emulator process, Prometheus."""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.emulator.kvproto import sandbox_dns_library
from controller.sandbox.alertmanager import Alertmanager, WebhookRoute
from controller.sandbox.controlplane import ControlPlane
from controller.sandbox.layouts import (
    V2_KINDS,
    ClusterNames,
    Layout,
    tidb_cluster_crd,
    tidb_cluster_object,
    tidb_operator_v1,
    tidb_operator_v2,
    v2_crds,
)
from controller.sandbox.layouts import names as layout_names
from controller.sandbox.pki import ClusterPki, make_cluster_pki
from controller.sandbox.processes import ManagedProcess, ProcessExited, free_port, wait_until
from controller.sandbox.prometheus import ALERT_RULES, Prometheus, scaled_alert_rules
from controller.sandbox.websecurity import WebSecurity

TIKV_CLUSTER_MANIFEST = Path(__file__).with_name("tikv-cluster.yaml")


def pod_ready(pod: dict) -> bool:
    return pod.get("metadata", {}).get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


@dataclass
class TikvCluster:
    """One emulated TiKV cluster in one namespace, with its own emulator and Prometheus."""

    control_plane: ControlPlane
    workdir: Path
    namespace: str = "tikv"
    time_scale: float = 0.1
    scrape_interval: float = 0.5
    status_ip_prefix: str = "127.0.10"
    stores: int = 3
    regions: int = 24
    emulator: ManagedProcess | None = None
    prometheus: Prometheus | None = None
    pd_port: int = 0
    admin_port: int = 0
    with_prometheus: bool = True
    # The standard TiKV/PD alert rules in Prometheus, sending to a real Alertmanager.
    with_alerting: bool = False
    evaluation_interval: float | None = None
    # Further alerting rule files (a user's own rules), loaded as written next to the standard ones.
    extra_rule_files: tuple[Path, ...] = ()
    detached: bool = False
    alertmanager: Alertmanager | None = None
    webhook_port: int = 0  # the controller's Alertmanager webhook receiver (with_alerting)
    # PD's client port over mutual TLS (its own CA, PD's certificate, a client certificate), as
    # tidb-operator's TLS clusters run; Prometheus and Alertmanager then serve HTTPS with client
    # certificates and basic auth, and Prometheus scrapes PD over mutual TLS.
    tls: bool = False
    pki: ClusterPki | None = None
    web: WebSecurity | None = None
    # The objects as which tool creates them (controller/sandbox/layouts.py).
    layout: Layout = "plain"
    cluster_name: str = "basic"  # the TidbCluster's name (tidb-operator layouts)

    @property
    def pd_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.pd_host}:{self.pd_port}"

    @property
    def pd_host(self) -> str:
        """Where PD's port listens: a tidb-operator layout's PD has an address of its own (its
        Service's names resolve to it, port 2379 as in the cluster); the plain one, loopback."""
        return "127.0.0.1" if self.layout == "plain" else f"{self.status_ip_prefix}.250"

    @property
    def pd_service_names(self) -> tuple[str, ...]:
        """PD's Service as clients in the cluster name it (tidb-operator layouts)."""
        if not self.names.pd_service:
            return ()
        service = f"{self.names.pd_service}.{self.namespace}"
        return (service, f"{service}.svc", f"{service}.svc.cluster.local")

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def names(self) -> ClusterNames:
        return layout_names(self.layout, self.cluster_name)

    def deploy(self) -> None:
        cp = self.control_plane
        if cp.kubectl("get", "namespace", self.namespace, check=False).returncode != 0:
            cp.kubectl("create", "namespace", self.namespace)
        if self.layout == "plain":
            cp.kubectl("apply", "-n", self.namespace, "-f", str(TIKV_CLUSTER_MANIFEST))
            if self.stores != 3:
                cp.kubectl("scale", "-n", self.namespace, "statefulset/tikv", f"--replicas={self.stores}")
        elif self.layout == "tidb-operator-v2":
            cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(v2_crds()))
            cp.wait_established(*(f"{plural}.core.pingcap.com" for plural in V2_KINDS))
            suffixes = [secrets.token_hex(3) for _ in range(3 + self.stores)]
            objects = tidb_operator_v2(self.cluster_name, self.stores, suffixes)
            cp.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump_all(objects))
            return  # the pods are the operator's (the emulator's) to create, once it runs
        else:
            cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(tidb_cluster_crd()))
            cp.wait_established("tidbclusters.pingcap.com")
            objects = [
                tidb_cluster_object(self.cluster_name, self.stores, tls=self.tls),
                *tidb_operator_v1(self.cluster_name, self.stores),
            ]
            cp.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump_all(objects))
        wait_until(
            lambda: len(self.ready_tikv_pods()) == self.stores, 90, what=f"{self.stores} Ready TiKV pods"
        )

    def start(self) -> TikvCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.deploy()
        # A tidb-operator layout's PD listens on its own address at PD's own port.
        self.pd_port = self.pd_port or (2379 if self.layout != "plain" else free_port())
        self.admin_port = self.admin_port or free_port()
        targets = self.workdir / "tikv-targets.json"
        tls_args: list[str] = []
        if self.tls:
            self.pki = make_cluster_pki(
                self.workdir / "pki", ("127.0.0.1", "localhost", self.pd_host, *self.pd_service_names)
            )
            self.web = WebSecurity.create(self.pki)
            if self.layout != "plain":
                # What tidb-operator (with cert-manager) issues for clients of a TLS cluster.
                self.control_plane.kubectl(
                    "create",
                    "secret",
                    "generic",
                    f"{self.cluster_name}-cluster-client-secret",
                    "-n",
                    self.namespace,
                    f"--from-file=ca.crt={self.pki.ca_cert}",
                    f"--from-file=tls.crt={self.pki.client_cert}",
                    f"--from-file=tls.key={self.pki.client_key}",
                )
            tls_args = [
                f"--tls-ca={self.pki.ca_cert}",
                f"--tls-cert={self.pki.server_cert}",
                f"--tls-key={self.pki.server_key}",
            ]
        self.emulator = ManagedProcess(
            "emulator",
            [
                sys.executable,
                "-m",
                "controller.cli",
                "emulator",
                "--kubeconfig",
                str(self.control_plane.kubeconfig),
                "--namespace",
                self.namespace,
                "--pd-port",
                str(self.pd_port),
                "--admin-port",
                str(self.admin_port),
                "--time-scale",
                str(self.time_scale),
                "--status-ip-prefix",
                self.status_ip_prefix,
                "--targets-file",
                str(targets),
                "--regions",
                str(self.regions),
                "--hosts-file",
                str(self.hosts_file),
                "--headless-service",
                self.names.tikv_peer_service,
                "--pd-host",
                self.pd_host,
                *(["--operator-v2"] if self.layout == "tidb-operator-v2" else []),
                *(f"--pd-name={name}" for name in self.pd_service_names),
                *tls_args,
            ],
            self.workdir / "emulator.log",
            die_with_parent=not self.detached,
        ).start()
        try:
            wait_until(self._emulator_ready, 60, what="the emulator's PD API")
            if not self.with_prometheus:
                return self
            if self.with_alerting:
                self.alertmanager = Alertmanager(
                    self.workdir / "alertmanager",
                    detached=self.detached,
                    webhook=self._webhook_route(),
                    time_scale=self.time_scale,
                    web=self.web,
                ).start()
            self.prometheus = Prometheus(
                self.workdir / "prometheus",
                f"{self.pd_host}:{self.pd_port}",
                targets,
                scrape_interval=self.scrape_interval,
                evaluation_interval=self.evaluation_interval,
                rule_files=(self._alert_rules(), *self.extra_rule_files) if self.with_alerting else (),
                alertmanager=self.alertmanager.address if self.alertmanager else "",
                detached=self.detached,
                web=self.web,
                alertmanager_web=self.alertmanager is not None and self.web is not None,
            ).start()
            # Prometheus hands discovered targets to its scrapers at most every 5 s: wait until
            # PD and every store have really been scraped, so tests start from a known state.
            wait_until(self._all_scraped, 30, what="Prometheus to scrape PD and every store")
        except BaseException:
            self.stop()
            raise
        return self

    def _webhook_route(self) -> WebhookRoute:
        """The controller's receiver Alertmanager pages (the controller starts later, on this port)."""
        self.webhook_port = self.webhook_port or free_port()
        token = self.workdir / "webhook-token"
        if not token.exists():
            token.write_text(secrets.token_urlsafe(32))
            token.chmod(0o600)
        return WebhookRoute(f"http://127.0.0.1:{self.webhook_port}/alertmanager", token)

    def alerting_env(self) -> dict[str, str]:
        """The controller's settings for this cluster's Alertmanager and its webhook receiver."""
        if self.alertmanager is None:
            return {}
        route = self._webhook_route()
        return {
            "CHAOSDEMO_ALERTMANAGER_URL": self.alertmanager.url,
            "CHAOSDEMO_WEBHOOK_ADDRESS": f"127.0.0.1:{self.webhook_port}",
            "CHAOSDEMO_WEBHOOK_TOKEN_FILE": str(route.token_file),
        }

    def credentials_env(self) -> dict[str, str]:
        """What the controller and the monitor are given on a TLS cluster: directories laid out
        like mounted Secrets, for PD (its client certificate) and for Prometheus and
        Alertmanager (the same certificate, and basic auth). Empty for a plain cluster."""
        if self.web is None:
            return {}
        credentials = self.workdir / "credentials"
        return {
            "CHAOSDEMO_PD_CREDENTIALS_DIR": str(
                self.web.credentials_dir(credentials / "pd", with_auth=False)
            ),
            "CHAOSDEMO_PROMETHEUS_CREDENTIALS_DIR": str(self.web.credentials_dir(credentials / "monitoring")),
            "CHAOSDEMO_ALERTMANAGER_CREDENTIALS_DIR": str(credentials / "monitoring"),
        }

    @property
    def hosts_file(self) -> Path:
        """The stores' advertised names -> their loopback addresses (the sandbox's DNS)."""
        return self.workdir / "hosts"

    @property
    def pd_address(self) -> str:
        """PD as a TiKV client is given it: host:port (gRPC and HTTP on the one port)."""
        return f"{self.pd_host}:{self.pd_port}"

    def client_env(self) -> dict[str, str]:
        """What a process running a TiKV client needs to reach the stores by the names they
        advertise: the sandbox's stand-in for cluster DNS (tools/sandbox_dns.c)."""
        return {"LD_PRELOAD": str(sandbox_dns_library()), "CHAOSDEMO_HOSTS_FILE": str(self.hosts_file)}

    def _alert_rules(self) -> Path:
        """The standard rules, their ``for:`` on the emulator's clock."""
        return scaled_alert_rules(ALERT_RULES, self.time_scale, self.workdir / "alert-rules.yml")

    def _emulator_ready(self) -> bool:
        assert self.emulator is not None
        if not self.emulator.alive():
            raise ProcessExited(f"emulator exited:\n{self.emulator.log_tail()}")
        with urllib.request.urlopen(
            f"{self.pd_url}/pd/api/v1/stores", timeout=2, context=self.client_ssl()
        ) as r:
            return int(json.load(r)["count"]) == self.stores

    def client_ssl(self) -> ssl.SSLContext | None:
        """A client context for PD's TLS port (None: a plain cluster)."""
        if self.pki is None:
            return None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(self.pki.client_cert, self.pki.client_key)
        return context

    def _all_scraped(self) -> bool:
        assert self.prometheus is not None
        up = self.prometheus.query("up == 1")
        return len(up) == self.stores + 1

    def stop(self) -> None:
        if self.prometheus:
            self.prometheus.stop()
        if self.alertmanager:
            self.alertmanager.stop()
        if self.emulator:
            self.emulator.stop()

    # -- helpers for tests and the demo ----------------------------------------------------------
    def tikv_pods(self) -> list[dict]:
        out = self.control_plane.kubectl(
            "get", "pods", "-n", self.namespace, "-l", "app.kubernetes.io/component=tikv", "-o", "json"
        ).stdout
        return list(json.loads(out)["items"])

    def ready_tikv_pods(self) -> list[dict]:
        return [p for p in self.tikv_pods() if pod_ready(p)]

    def admin(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(
            f"{self.admin_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return dict(json.load(r))

    def admin_state(self) -> dict:
        """The emulator's own view: stores, PD serving, and its record of every election."""
        with urllib.request.urlopen(f"{self.admin_url}/emulator/state", timeout=5) as r:
            return dict(json.load(r))

    def pd_store(self, store_id: int) -> dict:
        """PD's /store/{id} as JSON (what the controller sees)."""
        with urllib.request.urlopen(
            f"{self.pd_url}/pd/api/v1/store/{store_id}", timeout=5, context=self.client_ssl()
        ) as r:
            return dict(json.load(r))

    @property
    def ticket_cluster(self) -> str:
        """The name the monitor's tickets carry for this cluster (from PD's cluster id)."""
        from controller.pd.client import cluster_name

        with urllib.request.urlopen(f"{self.pd_url}/pd/api/v1/cluster", timeout=5) as r:
            return cluster_name(int(json.load(r)["id"]))
