"""The real-cluster manifests, proven against the sandbox's real API server (no Docker here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from controller.sandbox.controlplane import ControlPlane
from tests.support.drills import example_drill_as, opt_in, service_account_kubeconfig

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
SA = "system:serviceaccount:chaosdemo-system:chaosdemo"


def test_kustomize_server_dry_run_and_a_broken_copy_fails(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = control_plane
    # Server-side dry-run cannot create a namespace and objects inside it in one go: make the
    # namespaces for real first (as `kubectl apply -k` on a real cluster would, in order).
    cp.kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "namespaces.yaml"))
    ok = cp.kubectl("apply", "--dry-run=server", "-k", str(REPO_ROOT / "manifests"), check=False)
    assert ok.returncode == 0, ok.stderr
    for kind in (
        "statefulset.apps/tikv",
        "statefulset.apps/pd",
        "deployment.apps/chaosdemo",
        "deployment.apps/prometheus",
        "deployment.apps/alertmanager",
        "clusterrole.rbac.authorization.k8s.io/chaosdemo-controller",
    ):
        assert kind in ok.stdout and "(server dry run)" in ok.stdout

    # The demo's go-ycsb client load for real clusters, created in the target namespace.
    job = cp.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        "tikv",
        "-f",
        str(REPO_ROOT / "manifests" / "load" / "go-ycsb-job.yaml"),
        check=False,
    )
    assert job.returncode == 0 and "job.batch/chaosdemo-ycsb created (server dry run)" in job.stdout, (
        job.stderr
    )

    broken = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "manifests", broken / "manifests")
    shutil.copytree(REPO_ROOT / "crds", broken / "crds")
    tikv = broken / "manifests" / "tikv" / "tikv.yaml"
    tikv.write_text(tikv.read_text().replace("replicas: 3", "replicas: -3"))
    bad = cp.kubectl("apply", "--dry-run=server", "-k", str(broken / "manifests"), check=False)
    assert bad.returncode != 0
    assert "replicas" in bad.stderr and "greater than or equal to 0" in bad.stderr


def test_the_tidb_operator_tls_overlay_renders_and_passes_a_server_dry_run(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    overlay = REPO_ROOT / "manifests" / "overlays" / "tidb-operator-tls"
    cp.kubectl("apply", "-f", str(overlay / "namespaces.yaml"))
    ok = cp.kubectl("apply", "--dry-run=server", "-k", str(overlay), check=False)
    assert ok.returncode == 0, ok.stderr
    rendered = list(yaml.safe_load_all(cp.kubectl("kustomize", str(overlay)).stdout))
    deployment = next(d for d in rendered if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in deployment["containers"]}
    controller_env = {e["name"]: e.get("value") for e in containers["controller"]["env"]}
    assert controller_env["CHAOSDEMO_PD_ADDRESS"] == "https://basic-pd.tidb-cluster.svc:2379"
    assert "ANTHROPIC_API_KEY" in controller_env, "the base's env is kept"
    monitor = containers["monitor"]
    assert "--pd-address=https://basic-pd.tidb-cluster.svc:2379" in monitor["args"]
    for container in (containers["controller"], monitor):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CHAOSDEMO_PD_CREDENTIALS_DIR"] == "/etc/chaosdemo/pd"
        assert "/etc/chaosdemo/pd" in {m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    assert volumes["pd-credentials"]["secret"]["secretName"] == "basic-cluster-client-secret"
    role = next(d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"] == "chaosdemo-target")
    assert role["metadata"]["namespace"] == "tidb-cluster"
    assert {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["basic-cluster-client-secret"],
        "verbs": ["get"],
    } in role["rules"]
    assert any(r["apiGroups"] == ["pingcap.com"] for r in role["rules"])
    binding = next(
        d for d in rendered if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "chaosdemo-target"
    )
    assert binding["metadata"]["namespace"] == "tidb-cluster"


def test_example_chaosdemo_is_the_one_documented_and_used() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "kubectl apply -n tikv -f chaosdemo.yaml" in readme
    import argparse

    from controller.commands.demo import register  # the demo's default manifest

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["demo"])
    assert args.manifest == REPO_ROOT / "chaosdemo.yaml"


def _service_account_kubeconfig(cp: ControlPlane, target_ns: str, path: Path) -> Path:
    rbac = (REPO_ROOT / "manifests" / "controller" / "rbac.yaml").read_text()
    cp.kubectl("apply", "-f", str(REPO_ROOT / "manifests" / "namespaces.yaml"))
    cp.kubectl("apply", "-f", "-", input=rbac.replace("namespace: tikv", f"namespace: {target_ns}"))
    return service_account_kubeconfig(cp, "chaosdemo-system", "chaosdemo", path)


def test_controller_as_its_service_account(tikv_cluster_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory()
    opt_in(cluster)
    cp = cluster.control_plane
    sa_kubeconfig = _service_account_kubeconfig(cp, cluster.namespace, tmp_path / "sa.kubeconfig")

    def can(*args: str) -> str:
        return cp.kubectl("auth", "can-i", *args, check=False, kubeconfig=sa_kubeconfig).stdout.strip()

    assert (
        cp.kubectl(
            "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=sa_kubeconfig
        ).stdout
        == SA
    )
    assert can("delete", "pods", "-n", cluster.namespace) == "yes"
    assert can("delete", "pods", "-n", "default") == "no"
    assert can("delete", "pods", "-n", "kube-system") == "no"
    assert can("list", "pods", "-n", "default") == "no"  # pods only where drills may go
    assert can("create", "chaosdemos.chaos.operator.dev", "-n", cluster.namespace) == "yes"  # schedule runs
    assert can("patch", "chaosdemoschedules.chaos.operator.dev/status", "-n", cluster.namespace) == "yes"
    assert can("get", "secrets", "-n", cluster.namespace) == "no"
    assert can("list", "secrets", "--all-namespaces") == "no"
    assert can("patch", "chaosdemos.chaos.operator.dev/status", "-n", cluster.namespace) == "yes"
    forbidden = cp.kubectl(
        "delete", "pod", "anything", "-n", "default", check=False, kubeconfig=sa_kubeconfig
    )
    assert "Forbidden" in forbidden.stderr

    st, log = example_drill_as(cluster, sa_kubeconfig, tmp_path / "drill")
    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    assert "Forbidden" not in log, log


def test_alert_rules_and_alertmanager_config_are_valid() -> None:
    """The standard TiKV/PD rules and the Alertmanager config, checked by the tools that ship
    with Debian's prometheus and prometheus-alertmanager packages."""
    import subprocess

    import yaml

    rules = REPO_ROOT / "manifests" / "prometheus" / "alert-rules.yml"
    checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0 and "SUCCESS: 5 rules found" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    am = REPO_ROOT / "manifests" / "prometheus" / "alertmanager.yml"
    checked = subprocess.run(["amtool", "check-config", str(am)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    by_name = {r["alert"]: r for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    assert {r["for"] for r in by_name.values()} == {"1m"}
    assert "store_disconnected_count" in by_name["PD_cluster_lost_connect_store_nums"]["expr"]
    assert by_name["TiKV_node_restart"]["expr"] == 'changes(process_start_time_seconds{job="tikv"}[5m]) > 0'


def test_crd_has_no_stray_keys() -> None:
    """A comma inside an unquoted flow-mapping description silently makes a key of its own (the
    API server then refuses the CRD on the next apply): no schema key may be empty."""
    import yaml

    def walk(node: object, path: str) -> list[str]:
        if isinstance(node, dict):
            return [
                p for k, v in node.items() for p in ([f"{path}.{k}"] if v is None else walk(v, f"{path}.{k}"))
            ]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in walk(v, f"{path}[{i}]")]
        return []

    crd = yaml.safe_load((REPO_ROOT / "crds" / "chaosdemo.yaml").read_text())
    assert walk(crd, "") == []
