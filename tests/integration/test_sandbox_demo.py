"""The user's first ten minutes: `chaosdemo sandbox up`, `chaosdemo demo --yes`, `kubectl get
chaosdemos -A` while it runs, the report, and `chaosdemo sandbox down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from controller.sandbox.binaries import binary
from controller.sandbox.sandbox import SandboxState, alive
from tests.support.drills import patience

pytestmark = pytest.mark.integration


def chaosdemo(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def demo_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The README's demo command, as a user runs it from the checkout."""
    return subprocess.run(
        ["bash", "scripts/demo.sh", "--yes", *args],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_sandbox_demo_report_and_down(tmp_path: Path) -> None:
    sandbox_dir = tmp_path / "sandbox"
    env = {**os.environ, "CHAOSDEMO_SANDBOX_DIR": str(sandbox_dir)}
    env.pop("KUBECONFIG", None)
    env.pop("ANTHROPIC_API_KEY", None)
    # The emulated cluster on a clock five times faster (PD's thresholds, elections and the
    # alert rules' `for:` alike): the same drills and stages, without waiting out real minutes.
    up = chaosdemo("sandbox", "up", "--time-scale", "0.2", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    state = SandboxState.load(sandbox_dir)
    assert state is not None
    assert f"export KUBECONFIG={state.kubeconfig}" in up.stdout
    try:
        # The README's demo command: it finds the running sandbox and runs the drill.
        kubectl = [str(binary("kubectl")), "--kubeconfig", state.kubeconfig]
        phases: set[str] = set()
        stop = threading.Event()

        def watch_phases() -> None:  # what a user sees with `kubectl get chaosdemos -A`
            while not stop.is_set():
                out = subprocess.run(
                    [*kubectl, "get", "chaosdemos", "-A", "--no-headers"], capture_output=True, text=True
                ).stdout
                for line in out.splitlines():
                    phases.add(line.split()[2])
                time.sleep(0.1)

        watcher = threading.Thread(target=watch_phases, daemon=True)
        watcher.start()
        demo = demo_script("--load-seconds", "2", env=env)
        stop.set()
        watcher.join(5)
        out = demo.stdout
        assert demo.returncode == 0, out + demo.stderr
        env["KUBECONFIG"] = state.kubeconfig
        for stage in (
            "Stage 1: cluster health",
            "Stage 2: client load",
            "Stage 3: fault injection",
            "Stage 4: detection",
            "Stage 5: diagnosis",
            "Stage 6: recovery",
            "cleanup",
        ):
            assert stage in out, f"missing {stage!r}:\n{out}"
        assert "Diagnosis (offline-rules)" in out and "tikv_pod_failure" in out
        # The load, and what clients felt, live and in the result.
        assert "clients:" in out and "requests/s" in out and "what clients felt" in out, out
        # The load is go-ycsb (set-up builds it), not the fallback.
        assert "go-ycsb (workload A, TiKV's Go client, raw)" in out and "go-ycsb unavailable" not in out, out
        assert "Pass" in out and "deleted ChaosDemo" in out
        assert (
            len(
                phases
                & {"Pending", "Preflight", "Injecting", "Detecting", "Diagnosing", "Recovering", "Completed"}
            )
            >= 2
        ), f"kubectl saw phases {phases}"
        # The demo deleted its drill; the finalizer restored the cluster.
        pods = json.loads(
            subprocess.run(
                [*kubectl, "get", "pods", "-n", "tikv", "-o", "json"], capture_output=True, text=True
            ).stdout
        )["items"]
        assert sum(1 for p in pods if p["metadata"]["name"].startswith("tikv-")) == 3

        # A report of a drill that is still there. First let the monitor resolve the demo's
        # ticket: preflight rightly refuses a drill while the cluster has an open one.
        def wait_tickets_resolved() -> None:
            deadline = time.monotonic() + patience(20)
            while time.monotonic() < deadline:
                listed = json.loads(chaosdemo("tickets", "list", "--json", env=env).stdout)
                if listed and all(t["status"] == "resolved" for t in listed):
                    return
                time.sleep(0.5)

        wait_tickets_resolved()
        subprocess.run(
            [*kubectl, "apply", "-n", "tikv", "-f", "chaosdemo.yaml"],
            check=True,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
        )
        deadline = time.monotonic() + patience(60)  # the optional Alertmanager source: after `for:`
        while time.monotonic() < deadline:
            got = json.loads(
                subprocess.run(
                    [*kubectl, "get", "chaosdemo", "tikv-pod-kill", "-n", "tikv", "-o", "json"],
                    capture_output=True,
                    text=True,
                ).stdout
            )
            if (got.get("status") or {}).get("phase") in ("Completed", "Failed"):
                break
            time.sleep(0.5)
        report = chaosdemo("report", "tikv-pod-kill", "-n", "tikv", env=env)
        assert report.returncode == 0, report.stderr
        assert "## Timeline" in report.stdout and "time to detect" in report.stdout
        assert "store Up" in report.stdout and "## Diagnosis" in report.stdout
        as_json = json.loads(
            chaosdemo("report", "tikv-pod-kill", "-n", "tikv", "--format", "json", env=env).stdout
        )
        assert as_json["verdict"] == "Pass" and as_json["diagnosisMarkdown"]
        page = tmp_path / "report.html"
        html = chaosdemo(
            "report", "tikv-pod-kill", "-n", "tikv", "--format", "html", "-o", str(page), env=env
        )
        assert html.returncode == 0, html.stderr
        text = page.read_text()
        assert text.startswith("<!doctype html>") and '<svg id="timeline"' in text and 'id="impact"' in text
        tickets = chaosdemo("tickets", "list", "--json", env=env)
        assert tickets.returncode == 0 and len(json.loads(tickets.stdout)) >= 2

        # Every fault from the demo: a store stopped for a while, PD's leader killed, a store cut off.
        subprocess.run(
            [*kubectl, "delete", "chaosdemo", "tikv-pod-kill", "-n", "tikv", "--wait=true"], check=True
        )
        for fault, shown, cause in (
            ("store-outage", "stopped the store of", "tikv_store_down"),
            ("pd-leader-kill", "killed PD's leader", "pd_leader_loss"),
            ("network-partition", "cut off", "network_partition"),
        ):
            wait_tickets_resolved()
            run = demo_script("--load-seconds", "1", "--fault", fault, "--duration", "30", env=env)
            assert run.returncode == 0, run.stdout + run.stderr
            flat = " ".join(run.stdout.split())
            assert shown in flat and cause in flat and "Pass" in flat, run.stdout
    finally:
        down = chaosdemo("sandbox", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert not [name for name, pid in state.pids.items() if alive(pid)], "sandbox down left processes running"
    assert SandboxState.load(sandbox_dir) is None
