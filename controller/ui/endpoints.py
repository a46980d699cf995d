"""Where the CLI finds PD, Prometheus, the ticket file and the emulator: flags, then the
environment, then a running sandbox's state file, then localhost defaults (kind's port maps)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoints:
    pd_url: str
    prometheus_url: str
    tickets_db: str
    emulator_admin_url: str  # empty on a real cluster
    kubeconfig: str | None
    sandbox: bool
    client_env: dict[str, str] = field(default_factory=dict)  # the sandbox's, for TiKV's client


def _sandbox_state() -> Any:
    """A running sandbox's state, or None. The cluster image carries no sandbox at all."""
    try:
        from controller.sandbox.sandbox import SandboxState
    except ModuleNotFoundError:
        return None
    return SandboxState.load()


def resolve(pd_url: str = "", prometheus_url: str = "", tickets_db: str = "") -> Endpoints:
    state = _sandbox_state()
    env = os.environ
    kubeconfig = env.get("KUBECONFIG")
    use_sandbox = state is not None and (kubeconfig is None or kubeconfig == state.kubeconfig)
    return Endpoints(
        pd_url=pd_url
        or env.get("CHAOSDEMO_PD_ADDRESS")
        or (state.pd_url if use_sandbox and state else "http://127.0.0.1:2379"),
        prometheus_url=prometheus_url
        or env.get("CHAOSDEMO_PROMETHEUS_URL")
        or (state.prometheus_url if use_sandbox and state else "http://127.0.0.1:9090"),
        tickets_db=tickets_db
        or env.get("CHAOSDEMO_DB")
        or (state.tickets_db if use_sandbox and state else "tickets.db"),
        emulator_admin_url=state.emulator_admin_url if use_sandbox and state else "",
        kubeconfig=kubeconfig or (state.kubeconfig if use_sandbox and state else None),
        sandbox=use_sandbox,
        client_env=dict(state.client_env) if use_sandbox and state else {},
    )
