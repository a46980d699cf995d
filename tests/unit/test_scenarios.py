"""The offline diagnoser passes the whole scenario suite, deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.diagnosis.scenarios import load_suite, score
from controller.diagnosis.schema import RootCauseCategory
from controller.diagnosis.service import diagnose

SUITE = load_suite(Path(__file__).resolve().parents[1] / "scenarios")


def test_suite_is_big_enough() -> None:
    assert len(SUITE) >= 10
    categories = {s.expect["category"] for s in SUITE}
    assert {"tikv_pod_failure", "pd_unavailable", "region_replication", "unknown"} <= categories


@pytest.mark.parametrize("scenario", SUITE, ids=[s.name for s in SUITE])
async def test_offline_passes(scenario, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    first = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    result = score(scenario, first)
    assert result.passed, result.failures
    again = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    assert again.output == first.output  # deterministic


async def test_scoring_catches_a_wrong_diagnosis() -> None:
    scenario = next(s for s in SUITE if s.name == "killed-tikv-pod")
    result = await diagnose(scenario.data, provider="offline")
    wrong = result.output.model_copy(
        update={
            "root_cause_category": RootCauseCategory.PD_UNAVAILABLE,
            "evidence": [],
            "summary": "tikv-0 broke",
        }
    )
    result.output = wrong
    failures = score(scenario, result).failures
    assert any("category" in f for f in failures)
    assert any("did not cite ticket" in f for f in failures)
    assert any("tikv-0" in f for f in failures)
