"""The Helm chart, against the real API server: `helm lint`, `helm template` accepted by a
server-side dry run, and a `helm install` that creates every object and gives the controller's
ServiceAccount what it needs to run a drill, and nothing more."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from controller.sandbox.binaries import helm_binary
from controller.sandbox.controlplane import ControlPlane
from controller.sandbox.layouts import tidb_cluster_crd, v2_crds
from tests.support.drills import example_drill_as, opt_in, service_account_kubeconfig

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "chaosdemo"
TERMINAL = {"Completed", "Failed", "Aborted"}


def helm(cp: ControlPlane, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(helm_binary()), "--kubeconfig", str(cp.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def _render_and_dry_run(cp: ControlPlane, *values: str) -> tuple[str, str]:
    """The chart rendered with ``values`` (helm's --set arguments) and the API server's verdict on
    it (a server-side dry run, which must pass): the rendered text and kubectl's output."""
    rendered = helm(cp, "template", "chaosdemo", str(CHART), "-n", "chaosdemo-system", *values).stdout
    applied = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert applied.returncode == 0, applied.stderr
    return rendered, applied.stdout


def test_chart_lints_and_its_templates_pass_a_server_side_dry_run(control_plane: ControlPlane) -> None:
    cp = control_plane
    lint = helm(cp, "lint", str(CHART), "--strict", "--set", "anthropic.existingSecret=chaosdemo-anthropic")
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout, lint.stdout
    rendered = helm(
        cp, "template", "chaosdemo", str(CHART), "-n", "chaosdemo-system", "--include-crds"
    ).stdout
    cp.kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "namespaces.yaml"))
    applied = cp.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert applied.returncode == 0, applied.stderr
    for kind in (
        "customresourcedefinition.apiextensions.k8s.io/chaosdemoschedules.chaos.operator.dev",
        "deployment.apps/chaosdemo",
        "clusterrole.rbac.authorization.k8s.io/chaosdemo",
        "role.rbac.authorization.k8s.io/chaosdemo-target",
        "configmap/chaosdemo-dashboard",
        "configmap/chaosdemo-rules",
        "service/chaosdemo-metrics",
    ):
        said = rf"^{re.escape(kind)} (created|configured|unchanged) \(server dry run\)$"
        assert re.search(said, applied.stdout, re.MULTILINE), (kind, applied.stdout)
    # The dashboard and rules in the chart are the repository's own files.
    assert '"uid": "chaosdemo-drills"' in rendered and "ChaosDemoDrillStuck" in rendered
    assert "chaosdemo-webhook" not in rendered, "the webhook receiver is opt-in"

    # The webhook receiver: a Service and the token from the named Secret; never without one.
    webhook = ["--set", "alertmanager.webhook.enabled=true"]
    refused = helm(cp, "template", "chaosdemo", str(CHART), *webhook, check=False)
    assert refused.returncode != 0 and "needs alertmanager.webhook.existingSecret" in refused.stderr
    rendered, applied = _render_and_dry_run(
        cp, *webhook, "--set", "alertmanager.webhook.existingSecret=chaosdemo-webhook"
    )
    assert re.search(r"^service/chaosdemo-webhook (created|configured|unchanged)", applied, re.M)
    assert "CHAOSDEMO_WEBHOOK_ADDRESS" in rendered and "secretKeyRef: {name: chaosdemo-webhook" in rendered

    # A TLS cluster with locked-down monitoring: PD's client Secret, and a TLS and an auth Secret
    # for Prometheus, mounted into both containers; Alertmanager's into the controller only.
    rendered, _ = _render_and_dry_run(
        cp,
        "--set",
        "pd.address=https://basic-pd.tikv.svc:2379,pd.tlsSecret=basic-cluster-client-secret",
        "--set",
        "prometheus.credentialsSecrets={monitoring-tls,monitoring-auth}",
        "--set",
        "alertmanager.credentialsSecrets={monitoring-tls}",
    )
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")["spec"][
        "template"
    ]["spec"]
    containers = {c["name"]: c for c in deployment["containers"]}
    for name, dirs in (
        (
            "controller",
            {
                "PD": "/etc/chaosdemo/pd",
                "PROMETHEUS": "/etc/chaosdemo/prometheus",
                "ALERTMANAGER": "/etc/chaosdemo/alertmanager",
            },
        ),
        ("monitor", {"PD": "/etc/chaosdemo/pd", "PROMETHEUS": "/etc/chaosdemo/prometheus"}),
    ):
        env = {e["name"]: e.get("value") for e in containers[name]["env"]}
        mounts = {m["mountPath"] for m in containers[name]["volumeMounts"]}
        for server, path in dirs.items():
            assert env[f"CHAOSDEMO_{server}_CREDENTIALS_DIR"] == path and path in mounts, (name, env, mounts)
    volumes = {v["name"]: v for v in deployment["volumes"]}
    assert volumes["pd-credentials"]["secret"]["secretName"] == "basic-cluster-client-secret"
    projected = [s["secret"]["name"] for s in volumes["prometheus-credentials"]["projected"]["sources"]]
    assert projected == ["monitoring-tls", "monitoring-auth"]


def test_helm_install_runs_a_drill_with_exactly_the_granted_rights(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory()
    opt_in(cluster)
    cp = cluster.control_plane
    release, ns = "drills", f"chaosdemo-{cluster.namespace}"
    helm(
        cp,
        "install",
        release,
        str(CHART),
        "-n",
        ns,
        "--create-namespace",
        "--set",
        f"targetNamespaces={{{cluster.namespace}}}",
        "--set",
        "tickets.persistence.enabled=false",
    )
    try:
        objects = cp.kubectl(
            "get",
            "deployment,serviceaccount,service,configmap",
            "-n",
            ns,
            "-l",
            f"app.kubernetes.io/instance={release}",
            "-o",
            "name",
        ).stdout.split()
        assert {
            "deployment.apps/drills-chaosdemo",
            "serviceaccount/drills-chaosdemo",
            "service/drills-chaosdemo-metrics",
            "configmap/drills-chaosdemo-dashboard",
            "configmap/drills-chaosdemo-rules",
        } <= set(objects), objects
        kubeconfig = service_account_kubeconfig(cp, ns, "drills-chaosdemo", tmp_path / "sa.kubeconfig")

        def can(*args: str) -> str:
            return cp.kubectl("auth", "can-i", *args, check=False, kubeconfig=kubeconfig).stdout.strip()

        target = cluster.namespace
        assert can("delete", "pods", "-n", target) == "yes" and can("list", "pods", "-n", target) == "yes"
        assert can("create", "leases.coordination.k8s.io", "-n", target) == "yes"
        assert can("patch", "chaosdemoschedules.chaos.operator.dev/status", "-n", target) == "yes"
        # As on a cluster with tidb-operator installed (can-i resolves the kind by discovery).
        cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(tidb_cluster_crd()))
        cp.wait_established("tidbclusters.pingcap.com")
        assert can("get", "tidbclusters.pingcap.com", "-n", target) == "yes", "target.tidbCluster"
        for crd in v2_crds():
            cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
            cp.wait_established(crd["metadata"]["name"])
        # store-outage under tidb-operator v2: its Cluster paused for the outage, nothing more.
        assert can("patch", "clusters.core.pingcap.com", "-n", target) == "yes"
        assert can("get", "tikvs.core.pingcap.com", "-n", target) == "yes"
        # network-partition: its NetworkPolicy in target namespaces; the CNI's DaemonSet names.
        for verb in ("create", "get", "delete"):
            assert can(verb, "networkpolicies.networking.k8s.io", "-n", target) == "yes", verb
        assert can("list", "daemonsets.apps", "-n", "kube-system") == "yes"
        for forbidden in (
            ("delete", "pods", "-n", "default"),
            ("list", "pods", "-n", "default"),
            ("get", "secrets", "-n", target),
            ("list", "secrets", "--all-namespaces"),
            ("delete", "nodes"),
            ("create", "leases.coordination.k8s.io", "-n", "default"),
            ("delete", "chaosdemoschedules.chaos.operator.dev", "-n", target),
            ("patch", "tidbclusters.pingcap.com", "-n", target),
            ("get", "tidbclusters.pingcap.com", "-n", "default"),
            ("patch", "tikvs.core.pingcap.com", "-n", target),
            ("delete", "clusters.core.pingcap.com", "-n", target),
            ("patch", "clusters.core.pingcap.com", "-n", "default"),
            ("create", "networkpolicies.networking.k8s.io", "-n", "default"),
            ("patch", "networkpolicies.networking.k8s.io", "-n", target),
            ("get", "daemonsets.apps", "-n", "kube-system"),
            ("list", "daemonsets.apps", "-n", "default"),
        ):
            assert can(*forbidden) == "no", forbidden

        st, log = example_drill_as(cluster, kubeconfig, tmp_path / "drill")
        assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
        # The API server's every 403 says Forbidden (a bare "403" also matches ports and times).
        assert "Forbidden" not in log, log
    finally:
        helm(cp, "uninstall", release, "-n", ns)
    left = cp.kubectl("get", "clusterrole", "drills-chaosdemo", check=False)
    assert left.returncode != 0, "helm uninstall removed the cluster-wide objects"
