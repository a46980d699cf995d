"""Names, phases, verdicts and the parsed ``ChaosDemo`` spec."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

GROUP = "chaos.operator.dev"
VERSION = "v1alpha1"
PLURAL = "chaosdemos"
KIND = "ChaosDemo"
FINALIZER = "chaos.operator.dev/restore"
OPT_IN_ANNOTATION = "chaos.operator.dev/enabled"
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


class Selector(_Spec):
    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")
    match_expressions: list[dict[str, object]] = Field(default_factory=list, alias="matchExpressions")

    def to_label_selector(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for expr in self.match_expressions:
            key, op = str(expr["key"]), str(expr["operator"])
            values = ",".join(str(v) for v in expr.get("values", []) or [])  # type: ignore[attr-defined]
            parts.append(
                {
                    "In": f"{key} in ({values})",
                    "NotIn": f"{key} notin ({values})",
                    "Exists": key,
                    "DoesNotExist": f"!{key}",
                }[op]
            )
        return ",".join(parts)


class Target(_Spec):
    namespace: str = ""
    selector: Selector = Field(
        default_factory=lambda: Selector(matchLabels={"app.kubernetes.io/component": "tikv"})
    )
    pod: str = ""
    pd_address: str = Field(default="", alias="pdAddress")


class Fault(_Spec):
    action: str = "pod-kill"
    grace_period_seconds: int = Field(default=0, alias="gracePeriodSeconds", ge=0)


class Detection(_Spec):
    timeout_seconds: int = Field(default=120, alias="timeoutSeconds", ge=1)
    expect_within_seconds: int = Field(default=30, alias="expectWithinSeconds", ge=1)


class DiagnosisSpec(_Spec):
    enabled: bool = True
    provider: str = "auto"
    model: str = ""
    blind: bool = False


class Recovery(_Spec):
    timeout_seconds: int = Field(default=300, alias="timeoutSeconds", ge=1)


class Safety(_Spec):
    require_healthy_cluster: bool = Field(default=True, alias="requireHealthyCluster")
    dry_run: bool = Field(default=False, alias="dryRun")


class DrillSpec(_Spec):
    target: Target = Field(default_factory=Target)
    fault: Fault = Field(default_factory=Fault)
    detection: Detection = Field(default_factory=Detection)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    recovery: Recovery = Field(default_factory=Recovery)
    safety: Safety = Field(default_factory=Safety)
    abort: bool = False

    def target_namespace(self, own_namespace: str) -> str:
        return self.target.namespace or own_namespace
