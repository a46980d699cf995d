"""The operator's configuration, from environment variables (the Deployment sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from controller.httpaccess import PLAIN, ServerAccess, access_from_dir
from controller.operator.model import DEFAULT_PAUSE_IMAGE


def _csv(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class ConfiguredAccess:
    """TLS and credentials for the servers the controller was configured with (never sent to an
    address a spec names)."""

    pd: ServerAccess = PLAIN
    prometheus: ServerAccess = PLAIN
    alertmanager: ServerAccess = PLAIN


@dataclass(frozen=True)
class OperatorConfig:
    pd_address: str = "http://127.0.0.1:2379"
    prometheus_url: str = ""
    # The user's Alertmanager: with it, drills also time what reached their alerting.
    alertmanager_url: str = ""
    tickets_db: str = "tickets.db"
    # Namespaces drills may target without the opt-in annotation. Empty: only annotated ones.
    allowed_namespaces: frozenset[str] = field(default_factory=frozenset)
    # PD addresses a drill's target.pdAddress may name (empty: any). A ChaosDemo author could
    # otherwise point the safety checks at a fake PD that vouches "all Up".
    allowed_pd_addresses: frozenset[str] = field(default_factory=frozenset)
    # Prometheus and Alertmanager URLs a drill's detection.sources[].url may name (empty: any).
    # Without it a ChaosDemo author chooses where the controller sends requests.
    allowed_source_urls: frozenset[str] = field(default_factory=frozenset)
    # The images a store-outage may run in a TiKV pod instead of TiKV (with TiKV's volumes,
    # token and network identity): the admin's choice; a spec can only pick one of them.
    allowed_pause_images: frozenset[str] = frozenset({DEFAULT_PAUSE_IMAGE})
    # PD's and Prometheus' clocks may differ from the controller's by this much (seconds) before
    # preflight refuses: figures mix their moments.
    max_clock_skew: float = 1.0
    # network-partition: what enforces NetworkPolicies here, when the admin says so (e.g. calico);
    # empty: preflight looks for a known enforcing CNI in kube-system and warns when it finds none.
    network_policy_enforcer: str = ""
    step_interval: float = 0.5  # how often a running drill is advanced (kopf timer)
    tikv_job: str = "tikv"
    pd_job: str = "pd"
    metrics_port: int = 0
    # The Alertmanager webhook receiver (host:port; empty: none) and the file holding its bearer
    # token (a mounted Secret; CHAOSDEMO_WEBHOOK_TOKEN is read instead when no file is named).
    webhook_address: str = ""
    webhook_token_file: str = ""
    # Directories of files named like a Secret's keys (ca.crt, tls.crt, tls.key; token, or
    # username and password): how the configured PD, Prometheus and Alertmanager are reached.
    pd_credentials_dir: str = ""
    prometheus_credentials_dir: str = ""
    alertmanager_credentials_dir: str = ""
    # How long a diagnosis may wait for corroborating evidence after detection.
    diagnosis_settle: float = 15.0

    @classmethod
    def from_env(cls) -> OperatorConfig:
        env = os.environ
        return cls(
            pd_address=env.get("CHAOSDEMO_PD_ADDRESS", cls.pd_address),
            prometheus_url=env.get("CHAOSDEMO_PROMETHEUS_URL", ""),
            alertmanager_url=env.get("CHAOSDEMO_ALERTMANAGER_URL", ""),
            tickets_db=env.get("CHAOSDEMO_DB", cls.tickets_db),
            allowed_namespaces=_csv(env.get("CHAOSDEMO_ALLOWED_NAMESPACES", "")),
            allowed_pd_addresses=_csv(env.get("CHAOSDEMO_ALLOWED_PD_ADDRESSES", "")),
            allowed_source_urls=_csv(env.get("CHAOSDEMO_ALLOWED_SOURCE_URLS", "")),
            allowed_pause_images=_csv(env.get("CHAOSDEMO_PAUSE_IMAGES", ""))
            or frozenset({DEFAULT_PAUSE_IMAGE}),
            max_clock_skew=float(env.get("CHAOSDEMO_MAX_CLOCK_SKEW_SECONDS", cls.max_clock_skew)),
            network_policy_enforcer=env.get("CHAOSDEMO_NETWORK_POLICY_ENFORCER", ""),
            step_interval=float(env.get("CHAOSDEMO_STEP_INTERVAL", cls.step_interval)),
            tikv_job=env.get("CHAOSDEMO_TIKV_JOB", cls.tikv_job),
            pd_job=env.get("CHAOSDEMO_PD_JOB", cls.pd_job),
            metrics_port=int(env.get("CHAOSDEMO_METRICS_PORT", "0")),
            webhook_address=env.get("CHAOSDEMO_WEBHOOK_ADDRESS", ""),
            webhook_token_file=env.get("CHAOSDEMO_WEBHOOK_TOKEN_FILE", ""),
            pd_credentials_dir=env.get("CHAOSDEMO_PD_CREDENTIALS_DIR", ""),
            prometheus_credentials_dir=env.get("CHAOSDEMO_PROMETHEUS_CREDENTIALS_DIR", ""),
            alertmanager_credentials_dir=env.get("CHAOSDEMO_ALERTMANAGER_CREDENTIALS_DIR", ""),
            diagnosis_settle=float(env.get("CHAOSDEMO_DIAGNOSIS_SETTLE_SECONDS", cls.diagnosis_settle)),
        )

    def webhook_token(self) -> str:
        """The receiver's bearer token, read when the receiver starts (never kept in the config)."""
        if self.webhook_token_file:
            with open(self.webhook_token_file, encoding="utf-8") as f:
                return f.read().strip()
        return os.environ.get("CHAOSDEMO_WEBHOOK_TOKEN", "").strip()

    def configured_access(self) -> ConfiguredAccess:
        """How the configured PD, Prometheus and Alertmanager are reached (blocking: it reads
        files and loads keys; TLSConfigError says which directory is wrong)."""

        def load(directory: str) -> ServerAccess:
            return access_from_dir(directory) if directory else PLAIN

        return ConfiguredAccess(
            pd=load(self.pd_credentials_dir),
            prometheus=load(self.prometheus_credentials_dir),
            alertmanager=load(self.alertmanager_credentials_dir),
        )

    def webhook_host_port(self) -> tuple[str, int]:
        host, _, port = self.webhook_address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"CHAOSDEMO_WEBHOOK_ADDRESS must be host:port, not {self.webhook_address!r}")
        return host, int(port)
