"""The offline diagnoser passes the whole scenario suite, deterministically."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.diagnosis.scenarios import Scenario, load_scenario, load_suite, pass_rate, score
from controller.diagnosis.schema import Confidence, RootCauseCategory, Severity
from controller.diagnosis.service import diagnose

SUITE = load_suite(Path(__file__).resolve().parents[1] / "scenarios")
# Cases written from public TiKV/TiDB material, not next to the rules: each cites its source.
EXTERNAL = load_suite(Path(__file__).resolve().parents[1] / "scenarios_external")


def test_suite_covers_every_category_with_reasons() -> None:
    assert len(SUITE) >= 30
    assert {s.expect["category"] for s in SUITE} == {c.value for c in RootCauseCategory}
    assert all(len(s.why) > 40 for s in SUITE)  # each case says why its answer is right
    several = [s for s in SUITE if len(s.expect.get("summary_names", [])) >= 2]
    assert len(several) >= 3  # cases with several affected stores
    missing = [s for s in SUITE if s.data.stores is None or not s.data.metrics_available or not s.data.events]
    assert len(missing) >= 3  # cases with PD, Prometheus or events missing


def test_a_case_without_why_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "scenarios" / "01-killed-tikv-pod.yaml").read_text()
    case = tmp_path / "no-why.yaml"
    case.write_text("\n".join(line for line in text.splitlines() if not line.startswith(("why:", "  Probe"))))
    with pytest.raises(ValueError, match="why"):
        load_scenario(case)


def test_external_cases_cite_their_source() -> None:
    assert len(EXTERNAL) >= 15
    assert all("https://" in s.why for s in EXTERNAL), [s.name for s in EXTERNAL if "https://" not in s.why]
    assert not {s.name for s in EXTERNAL} & {s.name for s in SUITE}


@pytest.mark.parametrize("scenario", SUITE + EXTERNAL, ids=[s.name for s in SUITE + EXTERNAL])
async def test_offline_passes(scenario, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    first = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    result = score(scenario, first)
    assert result.passed, result.failures
    again = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    assert again.output == first.output  # deterministic


def _case(name: str) -> Scenario:
    return next(s for s in SUITE if s.name == name)


MUTATIONS = [
    (
        {"root_cause_category": RootCauseCategory.PD_UNAVAILABLE},
        "category pd_unavailable != tikv_pod_failure",
    ),
    ({"severity": Severity.HIGH}, "severity high not in ['critical']"),
    ({"evidence": []}, "did not cite ticket"),
    ({"summary": "tikv-1 (store 2) failed; 24 regions lost their majority."}, "summary does not name tikv-2"),
    ({"summary": "tikv-0, tikv-1 and tikv-2 failed."}, "claims 'tikv-0'"),
    (
        {"summary": "tikv-1 and tikv-2 failed.", "root_cause": "Two stores stopped."},
        "does not mention 'majority'",
    ),
]


@pytest.mark.parametrize(("change", "failure"), MUTATIONS, ids=[m[1][:30] for m in MUTATIONS])
async def test_scoring_catches_each_kind_of_wrong_diagnosis(change: dict[str, object], failure: str) -> None:
    scenario = _case("two-of-three-unreachable")
    result = await diagnose(scenario.data, provider="offline", blind=scenario.blind)
    assert score(scenario, result).passed
    result.output = result.output.model_copy(update=change)
    failures = score(scenario, result).failures
    assert any(f.startswith(failure) for f in failures), failures


async def test_scoring_catches_low_confidence_and_a_leaked_drill_record() -> None:
    quorum = _case("pd-quorum-lost")
    result = await diagnose(quorum.data, provider="offline", blind=quorum.blind)
    result.output = result.output.model_copy(update={"confidence": Confidence.LOW})
    assert any(f.startswith("confidence low") for f in score(quorum, result).failures)
    blind = _case("blind-drill")
    informed = await diagnose(blind.data, provider="offline", blind=False)  # told the answer
    assert "evidence 'drill' should have been withheld" in score(blind, informed).failures


async def test_pass_rate_is_counted_per_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m controller.diagnosis.scenarios` reports each folder apart; a wrong expectation
    counts as a failure with its reason."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    source = Path(__file__).resolve().parents[1] / "scenarios_external" / "01-tikv-node-restart-alert.yaml"
    (tmp_path / "a.yaml").write_text(source.read_text())
    (tmp_path / "b.yaml").write_text(
        source.read_text().replace("category: tikv_pod_failure", "category: crash_loop")
    )
    passed, scores = await pass_rate(tmp_path)
    assert passed == 1 and len(scores) == 2
    assert [s.failures for s in scores if not s.passed] == [["category tikv_pod_failure != crash_loop"]]
