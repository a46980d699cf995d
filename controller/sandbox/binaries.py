"""Where the Go-built control-plane binaries live, and a clear error when they do not."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "build.sh"
CONTROL_PLANE_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)


class MissingBinaryError(RuntimeError):
    """A binary the sandbox needs is not installed; the message says how to get it."""


def bin_dir() -> Path:
    """The versioned cache directory that ``tools/build.sh`` fills.

    ``CHAOSDEMO_BIN_DIR`` overrides it (for binaries built elsewhere).
    """
    override = os.environ.get("CHAOSDEMO_BIN_DIR")
    if override:
        return Path(override)
    if not BUILD_SCRIPT.exists():
        raise MissingBinaryError(
            f"{BUILD_SCRIPT} not found: set CHAOSDEMO_BIN_DIR to a directory holding "
            + ", ".join(CONTROL_PLANE_BINARIES)
        )
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def binary(name: str) -> Path:
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingBinaryError(
            f"control-plane binary {name!r} is missing at {path}. "
            f"Build it with `bash tools/build.sh` (Go >= 1.26; see README, Set-up)."
        )
    return path


def helm_binary() -> Path:
    """helm, built by ``tools/build.sh`` into a directory of its own (for the chart's tests)."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-helm"], check=True, capture_output=True, text=True
    )
    path = Path(out.stdout.strip()) / "helm"
    if not os.access(path, os.X_OK):
        raise MissingBinaryError(
            f"helm is missing at {path}. Build it with `bash tools/build.sh` (see README, Set-up)."
        )
    return path


def go_ycsb_binary() -> Path:
    """go-ycsb, built by ``tools/go_ycsb.sh`` (its workload files beside it)."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "tools" / "go_ycsb.sh"), "--print"],
        check=True,
        capture_output=True,
        text=True,
    )
    path = Path(out.stdout.strip())
    if not os.access(path, os.X_OK):
        raise MissingBinaryError(
            f"go-ycsb is missing at {path}. Build it with `bash tools/go_ycsb.sh` (README, Set-up)."
        )
    return path


def _debian_binary(command: str, package: str) -> Path:
    found = shutil.which(command) or (
        f"/usr/bin/{command}" if os.path.exists(f"/usr/bin/{command}") else None
    )
    if not found:
        raise MissingBinaryError(
            f"the `{command}` binary is missing. Install Debian's package: "
            f"`apt-get install -y {package}` (see README, Set-up)."
        )
    return Path(found)


def prometheus_binary() -> Path:
    return _debian_binary("prometheus", "prometheus")


def alertmanager_binary() -> Path:
    return _debian_binary("prometheus-alertmanager", "prometheus-alertmanager")


def require_all() -> None:
    """Fail early, naming every missing binary at once."""
    missing: list[str] = []
    for name in CONTROL_PLANE_BINARIES:
        try:
            binary(name)
        except MissingBinaryError as exc:
            missing.append(str(exc))
    for debian in (prometheus_binary, alertmanager_binary):
        try:
            debian()
        except MissingBinaryError as exc:
            missing.append(str(exc))
    if missing:
        raise MissingBinaryError("\n".join(missing))
