"""Numbered evidence: order, budgets with markers, redaction, untrusted quoting, blind drills."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.diagnosis.evidence import build_evidence
from controller.diagnosis.inputs import KubeEvent, MetricSummary
from controller.diagnosis.scenarios import load_scenario
from controller.redaction import redact

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_numbering_and_sources() -> None:
    data = load_scenario(SCENARIOS / "12-blind-drill.yaml").data
    bundle = build_evidence(data, blind=False)
    assert [e.id for e in bundle.items] == [f"E{i}" for i in range(1, len(bundle.items) + 1)]
    assert bundle.id_for("ticket") == "E1" and bundle.id_for("drill") == "E2"
    assert all(e.source for e in bundle.items)
    assert "[E1]" in bundle.render() and bundle.prompt_version
    blind = build_evidence(data)  # blind is the default
    assert blind.id_for("drill") is None and "pod-kill" not in blind.render()


def test_budgets_truncate_with_markers() -> None:
    data = load_scenario(SCENARIOS / "01-killed-tikv-pod.yaml").data
    data.metrics = [
        MetricSummary(name=f"m{i}", labels={"pod": f"tikv-{i}"}, before=1, after=2) for i in range(500)
    ]
    data.events = [KubeEvent(reason="Noise", message="x" * 200) for _ in range(100)]
    bundle = build_evidence(data, total_budget=9000)
    text = bundle.render()
    assert "[... truncated" in text
    assert any(d.startswith("metrics:") for d in bundle.dropped)
    assert any(d.startswith("events:") for d in bundle.dropped)
    assert len(text) <= 9000 + 600  # the budget, plus the dropped-list footer
    assert "[not included, over budget:" in text


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-0123456789abcdef")
    text = (
        "key sk-ant-canary-0123456789abcdef and Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345 "
        "password=hunter2hunter2 tok eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2lnbmF0dXJl"
    )
    out = redact(text)
    assert "canary" not in out and "hunter2" not in out and "abcdefghijklmnop" not in out and "eyJ" not in out
    assert out.count("[REDACTED]") == 4


def test_events_are_quoted_as_untrusted() -> None:
    data = load_scenario(SCENARIOS / "11-prompt-injection-in-events.yaml").data
    bundle = build_evidence(data)
    events = next(e for e in bundle.items if e.id == bundle.id_for("events"))
    assert events.body.startswith('<untrusted source="kubernetes-events">')
    assert events.body.count("</untrusted>") == 1  # the planted closing tag was defused
    assert "sk-ant-api03" not in events.body


def test_big_cluster_keeps_the_tickets_store_within_budget() -> None:
    from controller.diagnosis.scenarios import _store_json
    from controller.pd.models import StoreInfo

    data = load_scenario(SCENARIOS / "01-killed-tikv-pod.yaml").data  # ticket on store 2 / tikv-1
    data.stores = [
        StoreInfo.model_validate(_store_json({"id": i + 1, "pod": f"tikv-{i}"}, data.now))
        for i in range(1000)
    ]
    data.stores[1] = StoreInfo.model_validate(
        _store_json({"id": 2, "pod": "tikv-1", "state": "Disconnected"}, data.now)
    )
    data.metrics = [
        MetricSummary(name="up", labels={"pod": f"tikv-{i}"}, before=1, after=1) for i in range(1000)
    ]
    data.metrics[1] = MetricSummary(name="up", labels={"pod": "tikv-1"}, before=1, after=0, delta=-1)
    bundle = build_evidence(data)
    stores = next(e for e in bundle.items if e.id == bundle.id_for("stores"))
    metrics = next(e for e in bundle.items if e.id == bundle.id_for("metrics"))
    assert stores.body.splitlines()[1].startswith("2 | tikv-1.")  # first row, not cut
    assert "[... truncated" in stores.body
    assert metrics.body.splitlines()[1].startswith("up{pod=tikv-1}")
    assert bundle.chars // 4 <= 8000
