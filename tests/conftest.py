"""Shared fixtures. Integration fixtures start real processes and fail loudly when a
binary is missing (never skip): see controller.sandbox.binaries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.sandbox.controlplane import ControlPlane

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real control plane for the whole session; tests isolate themselves by namespace."""
    workdir = tmp_path_factory.mktemp("control-plane")
    cp = ControlPlane(workdir=workdir, keep_workdir=bool(os.environ.get("CHAOSDEMO_KEEP_WORKDIR")))
    cp.start()
    try:
        cp.kubectl("apply", "-k", str(REPO_ROOT / "crds"))
        cp.wait_established("chaosdemos.chaos.operator.dev", "chaosdemoschedules.chaos.operator.dev")
        yield cp
    finally:
        cp.stop()


def _cluster_numbers() -> Iterator[int]:
    """Numbers for emulated clusters (namespace tikv-N, status addresses 127.0.N.x): distinct
    across pytest-xdist workers too, whose clusters share this machine's loopback range."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return iter(range(11 + int(worker or 0), 250, max(1, workers)))


_cluster_counter = _cluster_numbers()


@pytest.fixture
def tikv_cluster_factory(control_plane: ControlPlane, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Start emulated TiKV clusters (emulator process + real Prometheus), each in a fresh
    namespace with its own loopback addresses; all stopped at the end of the test."""
    from controller.sandbox.tikv import TikvCluster

    started: list[TikvCluster] = []

    def start(**kwargs: object) -> TikvCluster:
        n = next(_cluster_counter)
        cluster = TikvCluster(
            control_plane=control_plane,
            workdir=tmp_path / f"tikv-{n}",
            namespace=f"tikv-{n}",
            status_ip_prefix=f"127.0.{n}",
            **kwargs,
        )  # type: ignore[arg-type]
        started.append(cluster)
        return cluster.start()

    yield start
    for cluster in started:
        cluster.stop()
        control_plane.kubectl("delete", "namespace", cluster.namespace, "--wait=false", check=False)


@pytest.fixture
def tikv_cluster(tikv_cluster_factory):  # type: ignore[no-untyped-def]
    return tikv_cluster_factory()


@pytest.fixture
def drill_env(tikv_cluster_factory, tmp_path: Path) -> Iterator:  # type: ignore[no-untyped-def,type-arg]
    """Emulated TiKV (opted in) + the monitor + the controller, all real processes."""
    from tests.support.drills import started_drill_env

    env = started_drill_env(tikv_cluster_factory(), tmp_path / "drill")
    try:
        yield env
    finally:
        env.stop()
