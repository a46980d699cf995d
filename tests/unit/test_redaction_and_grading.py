"""Redaction covers every credential shape a cluster's events, manifests or logs carry."""

from __future__ import annotations

import json

import pytest

from controller.redaction import REDACTED, redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("dial https://admin:hunter2pass@pd.tikv:2379/x failed", "hunter2pass"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("Authorization: Bearer abcdefghijklmnopqrstu", "abcdefghijklmnopqrstu"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nqwerty\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
        ),
        ("key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ('{"msg": "{\\"password\\":\\"s3cr3tvalue\\"}"}', "s3cr3tvalue"),
        ("ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijkl", "sk-ant-api03-abcdefghijkl"),
        (
            "token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2lnbmF0dXJl",
            "eyJhbGciOiJSUzI1NiJ9",
        ),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and REDACTED in out, out


def test_ordinary_text_is_kept() -> None:
    text = "store 2 (tikv-1.tikv-peer.tikv.svc:20160) Disconnected; see http://pd.tikv:2379/pd/api/v1/stores"
    assert redact(text) == text


def test_grading_names_the_exact_pod() -> None:
    from controller.diagnosis.grading import grade, names
    from controller.diagnosis.schema import DiagnosisOutput

    assert names("TiKV pod tikv-1 was killed", "tikv-1")
    assert not names("TiKV pod tikv-10 was killed", "tikv-1")
    assert not names("store 12 is down", "store 1")
    assert names("(store 1) is down", "store 1")
    output = DiagnosisOutput.model_validate(
        {
            "summary": "TiKV pod tikv-10 was killed and restarted.",
            "root_cause": "The process in tikv-10 stopped.",
            "root_cause_category": "tikv_pod_failure",
            "severity": "medium",
            "confidence": "high",
            "evidence": [],
            "recommended_actions": [],
            "open_questions": [],
        }
    )
    assert not grade(output, action="pod-kill", pod="tikv-1", store_id=2).matches
    assert grade(output, action="pod-kill", pod="tikv-10", store_id=11).matches


def test_log_lines_are_redacted() -> None:
    import logging

    from controller.logsetup import FORMAT, RedactingFormatter

    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "PD at %s failed", ("https://ops:pa55word@pd:2379",), None
    )
    line = RedactingFormatter(FORMAT).format(record)
    assert "pa55word" not in line and "https://ops:[REDACTED]@pd:2379" in line


def test_ticket_columns_fit_the_terminal() -> None:
    from controller.commands.tickets import ticket_columns

    assert ticket_columns(200) == [
        "id",
        "opened",
        "invariant",
        "subject",
        "pod",
        "severity",
        "status",
        "signals",
        "diagnoser",
    ]
    assert ticket_columns(80) == ["id", "opened", "invariant", "pod", "severity", "status"]
    assert ticket_columns(40) == ["id", "invariant", "pod", "status"]


def test_several_victims_grade_only_when_every_one_is_named() -> None:
    from controller.diagnosis.grading import grade
    from controller.diagnosis.schema import DiagnosisOutput, RootCauseCategory

    base = DiagnosisOutput.model_validate(
        {
            "summary": "2 TiKV stores failed at once: tikv-1 (store 2) and tikv-3 (store 4).",
            "root_cause": "Several stores failed together.",
            "root_cause_category": RootCauseCategory.TIKV_POD_FAILURE,
            "severity": "high",
            "confidence": "high",
            "evidence": [],
            "recommended_actions": [],
            "open_questions": [],
        }
    )
    assert grade(base, action="pod-kill", pod="tikv-1", store_id=2, others=(("tikv-3", 4),)).matches
    missing = grade(base, action="pod-kill", pod="tikv-1", store_id=2, others=(("tikv-4", 5),))
    assert not missing.matches and "tikv-4" in missing.reason


async def test_every_string_written_to_status_is_redacted_and_bounded() -> None:
    """The status writer is the one place: a secret quoted in an error body of a detection
    source, in a condition or in a diagnosis never reaches status, and no answer grows it without
    bound; the saved manifest of a bare pod stays whole (it recreates the pod)."""
    from controller.operator.state import Condition, DetectionStatus, SourceStatus
    from controller.operator.status import MAX_TEXT, StatusWriter

    written: list[dict] = []

    class Kube:
        async def patch_status(self, namespace: str, name: str, status: dict) -> dict:
            written.append(status)
            return {"status": {}}

    canary = "sk-ant-api03-canary-0123456789abcdef"
    body = f'{{"error": "upstream said Authorization: Bearer {canary}"}}' + "x" * 50_000
    manifest = "spec:\n" + "  image: pingcap/tikv:v8.5.0\n" * 500
    w = StatusWriter(Kube(), {"metadata": {"name": "d", "namespace": "ns", "uid": "u"}})  # type: ignore[arg-type]
    await w.patch(
        detection=DetectionStatus(
            sources=[SourceStatus(name="prom", type="prometheus", required=True, why=body)]
        ),
        conditions=[
            Condition(
                type="Detected",
                status="False",
                reason="Error",
                message=f"password={canary}",
                lastTransitionTime=0,
            )
        ],
        diagnosis={"summary": f"the key {canary} leaked into a log line"},
        victim={"namespace": "ns", "pod": "p", "uid": "u", "manifest": manifest},
    )
    [status] = written
    flat = json.dumps(status)
    assert canary not in flat and "[REDACTED]" in flat
    assert len(status["detection"]["sources"][0]["why"]) <= MAX_TEXT
    assert status["victim"]["manifest"] == manifest
