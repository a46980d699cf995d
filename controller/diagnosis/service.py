"""Choose a diagnoser, fall back on any Claude failure, store the result on the ticket."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from controller.diagnosis.claude import ClaudeDiagnoser, ClaudeFailure, api_key_configured
from controller.diagnosis.evidence import EvidenceBundle, build_evidence
from controller.diagnosis.facts import derive
from controller.diagnosis.inputs import DiagnosisInput
from controller.diagnosis.offline import NAME as OFFLINE_NAME
from controller.diagnosis.offline import diagnose_offline
from controller.diagnosis.render import to_markdown
from controller.diagnosis.schema import DiagnosisOutput
from controller.tickets import TicketDB

log = logging.getLogger(__name__)
PROVIDERS = ("auto", "claude", "offline")


@dataclass
class DiagnosisResult:
    output: DiagnosisOutput
    diagnoser: str
    model: str | None
    bundle: EvidenceBundle
    fallback_reason: str | None = None
    blind: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0

    @property
    def markdown(self) -> str:
        return to_markdown(self.output, self.bundle, diagnoser=self.diagnoser, model=self.model)

    def meta(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_ms": round(self.latency_ms, 1),
            "fallback_reason": self.fallback_reason,
            "blind": self.blind,
            "evidence_ids": sorted(self.bundle.ids(), key=lambda i: (i[0], int(i[1:]))),
            "dropped": self.bundle.dropped,
            "prompt_chars": self.bundle.chars,
        }


async def diagnose(
    data: DiagnosisInput,
    *,
    provider: str = "auto",
    model: str = "",
    blind: bool = True,
    claude: ClaudeDiagnoser | None = None,
) -> DiagnosisResult:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown diagnosis provider {provider!r}; one of {', '.join(PROVIDERS)}")
    # Deriving the facts of a 1,000-store cluster (its regions' quorum) takes tens of
    # milliseconds of CPU: off the event loop, like the offline rules below.
    facts = await asyncio.to_thread(derive, data)
    bundle = await asyncio.to_thread(build_evidence, data, blind=blind, facts=facts)
    fallback_reason: str | None = None
    use_claude = provider == "claude" or (provider == "auto" and api_key_configured())
    if use_claude:
        diagnoser = claude or ClaudeDiagnoser(model=model)
        try:
            result = await diagnoser.diagnose(bundle)
            return DiagnosisResult(
                output=result.output,
                diagnoser="claude",
                model=result.model,
                bundle=bundle,
                blind=blind,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                latency_ms=result.latency_ms,
            )
        except ClaudeFailure as failure:
            fallback_reason = failure.reason
            log.warning("Claude diagnosis failed (%s); using the offline rules", failure)
    started = time.perf_counter()
    output = await asyncio.to_thread(diagnose_offline, data, bundle, facts)
    return DiagnosisResult(
        output=output,
        diagnoser=OFFLINE_NAME,
        model=None,
        bundle=bundle,
        fallback_reason=fallback_reason,
        blind=blind,
        latency_ms=(time.perf_counter() - started) * 1000,
    )


async def diagnose_ticket(db: TicketDB, data: DiagnosisInput, **kwargs: Any) -> DiagnosisResult:
    """Diagnose and store the result (JSON and Markdown, diagnoser, model, prompt version, cost)."""
    result = await diagnose(data, **kwargs)
    await db.save_diagnosis(
        data.ticket.id,
        diagnosis=result.output.model_dump(mode="json"),
        markdown=result.markdown,
        diagnoser=result.diagnoser,
        model=result.model,
        prompt_version=result.bundle.prompt_version,
        meta=result.meta(),
    )
    return result
