"""Names, phases, verdicts and the parsed ``ChaosDemo`` spec."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

GROUP = "chaos.operator.dev"
VERSION = "v1alpha1"
PLURAL = "chaosdemos"
KIND = "ChaosDemo"
FINALIZER = "chaos.operator.dev/restore"
OPT_IN_ANNOTATION = "chaos.operator.dev/enabled"
# On a target namespace: the other namespaces whose ChaosDemos may drill it (comma-separated).
TRUSTS_ANNOTATION = "chaos.operator.dev/allowed-from"
HISTORY_LIMIT = 5


class Phase(StrEnum):
    PENDING = "Pending"
    PREFLIGHT = "Preflight"
    INJECTING = "Injecting"
    DETECTING = "Detecting"
    DIAGNOSING = "Diagnosing"
    RECOVERING = "Recovering"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ABORTED = "Aborted"


TERMINAL_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.ABORTED})
# Phases in which a pod of the target may be down because of this drill.
AFTER_KILL_PHASES = frozenset({Phase.DETECTING, Phase.DIAGNOSING, Phase.RECOVERING})


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    UNDETECTED = "Undetected"
    ABORTED = "Aborted"
    ERROR = "Error"


class _Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


# Kubernetes' own syntax for label keys and values (a selector the API server would refuse at
# use is refused here first, with the field named).
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]"
_LABEL_KEY_RE = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_LABEL_NAME}$"
)
_LABEL_VALUE_RE = re.compile(rf"^({_LABEL_NAME})?$")


def _check_key(key: str) -> str:
    if not _LABEL_KEY_RE.match(key) or len(key.split("/")[0]) > 253:
        raise ValueError(f"{key!r} is not a valid label key")
    return key


def _check_value(value: str) -> str:
    if not _LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value (63 characters at most, alphanumeric at both ends)"
        )
    return value


class MatchExpression(_Spec):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> MatchExpression:
        _check_key(self.key)
        for v in self.values:
            _check_value(v)
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def requirement(self) -> str:
        values = ",".join(self.values)
        return {
            "In": f"{self.key} in ({values})",
            "NotIn": f"{self.key} notin ({values})",
            "Exists": self.key,
            "DoesNotExist": f"!{self.key}",
        }[self.operator]


class Selector(_Spec):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: list[MatchExpression] = Field(default_factory=list, alias="matchExpressions")

    @model_validator(mode="after")
    def _valid(self) -> Selector:
        for key, value in self.match_labels.items():
            _check_key(key)
            _check_value(value)
        if not self.match_labels and not self.match_expressions:
            raise ValueError("an empty selector would match every pod in the namespace")
        return self

    def to_label_selector(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        parts += [expr.requirement() for expr in self.match_expressions]
        return ",".join(parts)


def _check_http_url(value: str, example: str = "http://prometheus.monitoring.svc:9090") -> str:
    if not value:
        return value
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL such as {example}")
    if url.username or url.password:
        raise ValueError("must not carry credentials")
    return value


def _check_pd_address(value: str) -> str:
    return _check_http_url(value, "http://pd.tikv.svc:2379")


class TargetTLS(_Spec):
    """TLS towards PD: a Secret in the target namespace with ``ca.crt`` and, for mutual TLS,
    ``tls.crt`` and ``tls.key`` (tidb-operator's ``<cluster>-cluster-client-secret`` has them)."""

    secret_name: str = Field(alias="secretName", min_length=1, max_length=253)


DEFAULT_SELECTOR: dict[str, Any] = {"selector": {"matchLabels": {"app.kubernetes.io/component": "tikv"}}}


class Target(_Spec):
    namespace: str = ""
    selector: Selector = Field(default_factory=lambda: Selector.model_validate(DEFAULT_SELECTOR["selector"]))
    pod: str = ""
    pd_address: Annotated[str, AfterValidator(_check_pd_address)] = Field(default="", alias="pdAddress")
    tls: TargetTLS | None = None
    # tidb-operator's cluster in the target namespace (v1's TidbCluster, else v2's Cluster): the
    # TiKV selector, PD's address and (v1, TLS) the client Secret are derived from it
    # (controller/operator/tidb_cluster.py).
    tidb_cluster: str = Field(default="", alias="tidbCluster", max_length=63)

    @model_validator(mode="before")
    @classmethod
    def _derived_not_given(cls, data: Any) -> Any:
        # The CRD fills in the default selector on every object: only another one conflicts.
        if isinstance(data, dict) and data.get("tidbCluster"):
            given = [
                key
                for key in ("selector", "pdAddress")
                if data.get(key) and data.get(key) != DEFAULT_SELECTOR.get(key)
            ]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} come from tidbCluster {data['tidbCluster']!r}: give one or the other"
                )
        return data


FaultAction = Literal["pod-kill", "store-outage", "pd-leader-kill", "network-partition"]
PartitionFrom = Literal["pd", "tikv"]
# store-outage's stand-in for TiKV: the image every Kubernetes node already has for its sandboxes.
DEFAULT_PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def _pd_and_peers() -> list[PartitionFrom]:
    return ["pd", "tikv"]


class Partition(_Spec):
    """network-partition: what the victim is cut off from (both, unless narrowed)."""

    from_: list[PartitionFrom] = Field(default_factory=_pd_and_peers, alias="from", min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Partition:
        if len(set(self.from_)) != len(self.from_):
            raise ValueError("partition.from names pd and tikv at most once each")
        return self


class Fault(_Spec):
    """pod-kill: delete the pod (the StatefulSet brings a new one). store-outage: swap the TiKV
    container's image for a pause image for ``durationSeconds``, then back. pd-leader-kill:
    delete the pod of PD's current leader. network-partition: cut the TiKV pod off from PD, its
    peers or both (a NetworkPolicy) for ``durationSeconds``, then heal it."""

    action: FaultAction = "pod-kill"
    grace_period_seconds: int = Field(default=0, alias="gracePeriodSeconds", ge=0)
    # pod-kill and network-partition: how many TiKV pods at once (refused when any region would
    # lose its majority).
    count: int = Field(default=1, ge=1, le=10)
    duration_seconds: int = Field(default=60, alias="durationSeconds", ge=1, le=86_400)
    pause_image: str = Field(default=DEFAULT_PAUSE_IMAGE, alias="pauseImage", min_length=1)
    partition: Partition = Field(default_factory=Partition)

    @model_validator(mode="after")
    def _count_only_for_pod_kill(self) -> Fault:
        if self.count > 1 and self.action not in ("pod-kill", "network-partition"):
            raise ValueError("count above 1 is only for pod-kill and network-partition")
        return self

    @property
    def outage_seconds(self) -> int:
        """How long the fault itself lasts before recovery can start (0: at once)."""
        return self.duration_seconds if self.action in ("store-outage", "network-partition") else 0


SourceType = Literal["tickets", "prometheus", "alertmanager", "alertmanager-notification"]


class DetectionSource(_Spec):
    """One detector whose noticing the fault is timed: the monitor's tickets, Prometheus'
    alerting rules, or Alertmanager."""

    type: SourceType
    name: str = ""
    # Prometheus or Alertmanager base URL; empty: the controller's configured one.
    url: Annotated[str, AfterValidator(_check_http_url)] = ""
    # Which alerts count (empty: any alert about a victim, or a cluster-level one of this cluster).
    alertnames: list[str] = Field(default_factory=list)
    # Label equalities every counted alert carries (a filter).
    matchers: dict[str, str] = Field(default_factory=dict)
    # The labels that say "the drilled cluster" on this source's alerts (e.g. cluster: prod); when
    # set, an alert that names no victim counts only with them.
    cluster_labels: dict[str, str] = Field(default_factory=dict, alias="clusterLabels")
    # Secrets in the target namespace: TLS towards the server (ca.crt, tls.crt, tls.key) and its
    # credentials (token, or username and password). May name the same Secret.
    tls_secret_name: str = Field(default="", alias="tlsSecretName", max_length=253)
    auth_secret_name: str = Field(default="", alias="authSecretName", max_length=253)
    required: bool = True

    @model_validator(mode="after")
    def _url_only_for_servers(self) -> DetectionSource:
        for given, what in (
            (self.url, "url"),
            (self.tls_secret_name, "tlsSecretName"),
            (self.auth_secret_name, "authSecretName"),
        ):
            if given and self.type not in ("prometheus", "alertmanager"):
                raise ValueError(f"{what} is for a prometheus or alertmanager source, not {self.type}")
        return self

    @property
    def label(self) -> str:
        return self.name or self.type


class Detection(_Spec):
    timeout_seconds: int = Field(default=120, alias="timeoutSeconds", ge=1)
    expect_within_seconds: int = Field(default=30, alias="expectWithinSeconds", ge=1)
    # Empty: the monitor's tickets, plus Alertmanager (not required) when the controller has one.
    sources: list[DetectionSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Detection:
        labels = [s.label for s in self.sources]
        if len(labels) != len(set(labels)):
            raise ValueError("two detection sources share a name: give each a distinct name")
        return self

    def resolved(
        self, *, prometheus_url: str, alertmanager_url: str, receiver: bool = False
    ) -> list[DetectionSource]:
        """The sources this run watches, defaults and URLs filled in from the controller's
        (``receiver``: the controller receives Alertmanager's webhook notifications)."""
        sources = self.sources or [
            DetectionSource(type="tickets"),
            *([DetectionSource(type="alertmanager", required=False)] if alertmanager_url else []),
            *([DetectionSource(type="alertmanager-notification", required=False)] if receiver else []),
        ]
        default_url = {
            "prometheus": prometheus_url,
            "alertmanager": alertmanager_url,
            "tickets": "",
            "alertmanager-notification": "",
        }
        return [s.model_copy(update={"url": s.url or default_url[s.type]}) for s in sources]


class DiagnosisSpec(_Spec):
    enabled: bool = True
    provider: str = "auto"
    model: str = ""
    # Blind by default: the grade measures what a responder would conclude from the evidence.
    blind: bool = True


class Recovery(_Spec):
    timeout_seconds: int = Field(default=300, alias="timeoutSeconds", ge=1)
    # After the store is whole again, how long the drill keeps sampling for PD to move leaders
    # back onto it (reported, not judged); 0 ends the drill as soon as the store is whole.
    wait_for_leaders_seconds: int = Field(default=60, alias="waitForLeadersSeconds", ge=0)


class ProbeSpec(_Spec):
    """TiKV's own client reading one key per region through PD, before the kill to recovery."""

    enabled: bool = False
    requests_per_second: float = Field(default=10.0, alias="requestsPerSecond", ge=1, le=200)
    deadline_seconds: float = Field(default=1.0, alias="deadlineSeconds", ge=0.05, le=30)
    max_regions: int = Field(default=64, alias="maxRegions", ge=1, le=1024)
    baseline_seconds: float = Field(default=2.0, alias="baselineSeconds", ge=0, le=60)
    # A key prefix the prober may write under (its own keys only, removed at the end); reads only
    # when unset.
    writes: str | None = Field(default=None, min_length=1, max_length=128)


class ImpactSpec(_Spec):
    probe: ProbeSpec = Field(default_factory=ProbeSpec)


class Slo(_Spec):
    """What the application may feel during a drill; a breach fails the drill, naming the figure."""

    max_error_ratio: float | None = Field(default=None, alias="maxErrorRatio", ge=0, le=1)
    max_p99_seconds: float | None = Field(default=None, alias="maxP99Seconds", gt=0)
    max_unavailable_seconds: float | None = Field(default=None, alias="maxUnavailableSeconds", ge=0)

    @property
    def set(self) -> bool:
        return any(
            v is not None for v in (self.max_error_ratio, self.max_p99_seconds, self.max_unavailable_seconds)
        )


class Safety(_Spec):
    require_healthy_cluster: bool = Field(default=True, alias="requireHealthyCluster")
    dry_run: bool = Field(default=False, alias="dryRun")


class DrillSpec(_Spec):
    target: Target = Field(default_factory=Target)
    fault: Fault = Field(default_factory=Fault)
    detection: Detection = Field(default_factory=Detection)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    recovery: Recovery = Field(default_factory=Recovery)
    impact: ImpactSpec = Field(default_factory=ImpactSpec)
    slo: Slo = Field(default_factory=Slo)
    safety: Safety = Field(default_factory=Safety)
    abort: bool = False

    @model_validator(mode="after")
    def _one_named_pod(self) -> DrillSpec:
        if self.fault.count > 1 and self.target.pod:
            raise ValueError("target.pod names one victim; fault.count above 1 chooses its victims")
        return self

    def target_namespace(self, own_namespace: str) -> str:
        return self.target.namespace or own_namespace
