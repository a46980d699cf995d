"""The Claude diagnoser with the real anthropic SDK over HTTP to a local Messages API server."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from anthropic._data import DEPRECATED_MODELS
from anthropic.types.model_param import ModelParam

from controller.diagnosis.claude import DEFAULT_MODEL, ClaudeDiagnoser
from controller.diagnosis.scenarios import load_scenario
from controller.diagnosis.service import diagnose, diagnose_ticket
from controller.tickets import TicketDB
from controller.tickets.models import Observation, Severity
from tests.support.messages_api import MessagesAPIServer

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CANARY = "sk-ant-canary-7f3a9c1e5b2d4680aa"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesAPIServer]:
    server = MessagesAPIServer().start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    yield server
    server.stop()


async def killed_pod_ticket(db: TicketDB, probe_detail: str):  # type: ignore[no-untyped-def]
    ticket, _ = await db.open_or_update(
        cluster="c",
        invariant="store_unreachable",
        subject="store/2",
        store_id=2,
        pod="tikv-1",
        severity=Severity.HIGH,
        signals=["store_unreachable", "store_restarted"],
        observations=[
            Observation(signal="store_unreachable", source="probe", at=1, detail=probe_detail),
            Observation(signal="store_restarted", source="pd", at=2, detail="start changed"),
        ],
    )
    return ticket


def scenario_data():  # type: ignore[no-untyped-def]
    return load_scenario(SCENARIOS / "01-killed-tikv-pod.yaml").data


def test_default_model_is_current() -> None:
    assert DEFAULT_MODEL not in DEPRECATED_MODELS
    assert DEFAULT_MODEL in ModelParam.__args__[0].__args__  # type: ignore[attr-defined]


async def test_good_reply_is_parsed_and_stored(api: MessagesAPIServer, tmp_path: Path) -> None:
    async with TicketDB(tmp_path / "t.db") as db:
        ticket = await killed_pod_ticket(db, "probe failed")
        data = scenario_data()
        data.ticket = ticket
        result = await diagnose_ticket(db, data, provider="auto", model="claude-opus-5-5")
        assert result.diagnoser == "claude" and result.fallback_reason is None
        assert result.output.root_cause_category.value == "tikv_pod_failure"
        assert result.model == "claude-opus-5-5" and result.input_tokens > 0
        stored = await db.get(ticket.id)
        assert stored is not None and stored.diagnoser == "claude" and stored.model == "claude-opus-5-5"
        assert stored.diagnosis and stored.diagnosis["root_cause_category"] == "tikv_pod_failure"
        assert stored.diagnosis_markdown and "**Evidence**" in stored.diagnosis_markdown
        assert stored.prompt_version and stored.diagnosis_meta and stored.diagnosis_meta["input_tokens"] > 0
    [request] = api.requests
    body = request["body"]
    assert body["model"] == "claude-opus-5-5"
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert "[E1]" in body["messages"][0]["content"] and "[E2]" in body["messages"][0]["content"]
    # The derived facts reach the model with the evidence they rest on, and citing one is valid.
    prompt = body["messages"][0]["content"]
    assert re.search(r"\[F1\] store \d+ \(tikv-\d\) process running now: \w+: .+\(E\d", prompt), prompt
    assert "F1" in {c.id for c in result.output.evidence}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("max_tokens", "max_tokens"),
        ("overloaded", "api_error_529"),
        ("timeout", "timeout"),
        ("refusal", "refusal"),
        ("bad_citation", "unknown_evidence"),
        ("server_error", "api_error_500"),
        ("not_json", "api_error_502"),
    ],
)
async def test_failures_fall_back_to_offline(api: MessagesAPIServer, mode: str, reason: str) -> None:
    api.mode = mode
    claude = ClaudeDiagnoser(timeout=1.0, max_retries=1)
    result = await diagnose(scenario_data(), provider="claude", claude=claude)
    assert result.diagnoser == "offline-rules"
    assert result.fallback_reason == reason
    assert result.output.root_cause_category.value == "tikv_pod_failure"
    if mode in ("overloaded", "server_error"):
        assert len(api.requests) == 2  # retried once, as configured, then gave up


async def test_no_key_auto_is_offline_claude_records_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    auto = await diagnose(scenario_data(), provider="auto")
    assert auto.diagnoser == "offline-rules" and auto.fallback_reason is None
    forced = await diagnose(scenario_data(), provider="claude")
    assert forced.diagnoser == "offline-rules" and forced.fallback_reason == "no_api_key"
    with pytest.raises(ValueError, match="unknown diagnosis provider"):
        await diagnose(scenario_data(), provider="gpt")


async def test_canary_key_never_leaks(
    api: MessagesAPIServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db_path = tmp_path / "t.db"
    async with TicketDB(db_path) as db:
        # The canary is planted where a careless pipeline would pick it up: a pod annotation
        # echoed in an event, and the ticket's own evidence.
        ticket = await killed_pod_ticket(db, f"probe failed; annotation chaos/api-key={CANARY}")
        data = scenario_data()
        data.ticket = ticket
        from controller.diagnosis.inputs import KubeEvent

        data.events = [
            KubeEvent(
                reason="Annotated",
                object="pod/tikv-1",
                message=f"metadata.annotations: {{'vendor/key': '{CANARY}'}}",
            )
        ]
        for mode in ("good", "overloaded"):
            api.mode = mode
            result = await diagnose_ticket(db, data, provider="claude", claude=ClaudeDiagnoser(max_retries=0))
            assert CANARY not in result.markdown and CANARY not in str(result.meta())
    for request in api.requests:
        assert CANARY not in request["raw"], "the key reached a prompt"
        # The one place the key belongs: the header that authenticates the call.
        assert any(CANARY in v for k, v in request["headers"].items() if k in ("x-api-key", "authorization"))
    raw_db = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert CANARY.encode() not in raw_db
    assert CANARY not in caplog.text
