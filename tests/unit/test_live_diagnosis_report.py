"""The opt-in live benchmark's report, run against the local Messages API (which always answers
"tikv_pod_failure"): per-category pass rates for Claude next to the offline rules, tokens,
latency and the prompt version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks import live_diagnosis
from controller.diagnosis.evidence import PROMPT_VERSION
from tests.support.messages_api import MessagesAPIServer


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesAPIServer]:
    server = MessagesAPIServer().start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0000000000000000")
    yield server
    server.stop()


async def test_report_compares_claude_and_offline_per_category(api: MessagesAPIServer) -> None:
    suite = live_diagnosis.load_suite(live_diagnosis.SUITE)
    results = [await live_diagnosis.run_case(s, "claude-test") for s in suite]
    data = live_diagnosis.report(results, "claude-test")
    assert data["prompt_version"] == PROMPT_VERSION and data["cases"] == len(suite) >= 30
    assert data["pass_rate"]["offline"] == 1.0
    rows = data["by_category"]
    assert all(row["offline_passed"] == row["cases"] for row in rows.values())
    # The stub names one pod and one category: it can only pass single-pod pod failures.
    assert rows["pd_unavailable"]["claude_passed"] == 0 and rows["network_partition"]["claude_passed"] == 0
    assert 0 < rows["tikv_pod_failure"]["claude_passed"] < rows["tikv_pod_failure"]["cases"]
    assert 0 < data["pass_rate"]["claude"] < 1
    assert data["input_tokens"]["n"] == len(suite) and data["input_tokens"]["median"] > 100
    assert data["latency_ms"]["median"] > 0 and len(api.requests) == len(suite)
    assert "two-of-three-unreachable" in data["failures"]
