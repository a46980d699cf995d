"""A diagnosis as Markdown, for the ticket and the report."""

from __future__ import annotations

from controller.diagnosis.evidence import EvidenceBundle
from controller.diagnosis.schema import DiagnosisOutput


def to_markdown(
    d: DiagnosisOutput, bundle: EvidenceBundle | None = None, *, diagnoser: str = "", model: str | None = None
) -> str:
    titles = {e.id: e.title for e in bundle.items} if bundle else {}
    lines = [
        f"### {d.summary}",
        "",
        f"**Root cause** ({d.root_cause_category.value}, severity {d.severity.value}, "
        f"confidence {d.confidence.value}): {d.root_cause}",
        "",
        "**Evidence**",
    ]
    lines += [f"- **{c.id}**{f' ({titles[c.id]})' if c.id in titles else ''}: {c.why}" for c in d.evidence]
    lines += ["", "**Recommended actions**"] + [f"{i}. {a}" for i, a in enumerate(d.recommended_actions, 1)]
    if d.open_questions:
        lines += ["", "**Open questions**"] + [f"- {q}" for q in d.open_questions]
    by = diagnoser + (f" ({model})" if model else "")
    if by:
        lines += ["", f"_Diagnosed by {by}._"]
    return "\n".join(lines)
