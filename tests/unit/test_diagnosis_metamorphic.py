"""Metamorphic properties of the offline diagnoser over the whole scenario suite: renaming the
TiKV pods (tidb-operator's ``basic-tikv-N`` and others) and their namespace, and reordering the lists the sources
return must not change the category, and the summary must name the renamed pods."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.diagnosis.grading import names
from controller.diagnosis.inputs import DiagnosisInput
from controller.diagnosis.scenarios import Scenario, load_suite
from controller.diagnosis.service import diagnose

SUITE = load_suite(Path(__file__).resolve().parents[1] / "scenarios") + load_suite(
    Path(__file__).resolve().parents[1] / "scenarios_external"
)
# A TiKV pod name, not a metric (tikv_...) nor a word: "tikv-" as a name starts.
POD = re.compile(r"(?<![\w-])tikv-")


def _renamed(data: DiagnosisInput, prefix: str, namespace: str) -> DiagnosisInput:
    """The pods renamed, and their namespace (in addresses and in the pods' own fields)."""
    text = POD.sub(f"{prefix}tikv-", data.model_dump_json())
    text = text.replace(".tikv.svc", f".{namespace}.svc").replace(
        '"namespace":"tikv"', f'"namespace":"{namespace}"'
    )
    return DiagnosisInput.model_validate_json(text)


def _reordered(data: DiagnosisInput, seed: int) -> DiagnosisInput:
    rng = random.Random(seed)
    raw = json.loads(data.model_dump_json())
    for key in ("stores", "pods", "metrics", "events", "recent_tickets"):
        if isinstance(raw.get(key), list):
            rng.shuffle(raw[key])
    return DiagnosisInput.model_validate(raw)


async def _category_and_summary(scenario: Scenario, data: DiagnosisInput) -> tuple[str, str]:
    result = await diagnose(data, provider="offline", blind=scenario.blind)
    return result.output.root_cause_category.value, result.output.summary


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scenario=st.sampled_from(SUITE),
    prefix=st.sampled_from(["basic-", "prod-eu-", "db1-"]),
    namespace=st.sampled_from(["tikv", "tidb-cluster", "prod"]),
    seed=st.integers(0, 2**16),
)
async def test_renames_and_reorders_change_nothing_but_the_names(
    scenario: Scenario, prefix: str, namespace: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    category, _ = await _category_and_summary(scenario, scenario.data)
    changed = _reordered(_renamed(scenario.data, prefix, namespace), seed)
    new_category, summary = await _category_and_summary(scenario, changed)
    assert new_category == category, (scenario.name, prefix, namespace, seed)
    for pod in scenario.expect.get("summary_names", []):
        assert names(summary, POD.sub(f"{prefix}tikv-", pod)), (scenario.name, summary)
