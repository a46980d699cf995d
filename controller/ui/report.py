"""A drill's report: timeline, time-to-detect and time-to-recover, the diagnosis.

Markdown for people (with a proportional timeline drawn in text), JSON for machines.
"""

from __future__ import annotations

import json
from typing import Any

from controller.operator.status import parse_rfc3339
from controller.tickets import Ticket

MILESTONES = (
    ("injectedAt", "kill"),
    ("detectedAt", "ticket"),
    ("diagnosedAt", "diagnosis"),
    ("podReadyAt", "pod Ready"),
    ("storeUpAt", "store Up"),
    ("regionsHealthyAt", "regions ok"),
    ("recoveredAt", "whole (TTR)"),
    ("leadersBalancedAt", "leaders"),
    ("completedAt", "done"),
)


def timeline_picture(timeline: dict[str, str], width: int = 60) -> str:
    """One line per milestone, a bar from the kill to it: how the incident unfolded, to scale."""
    start = parse_rfc3339(timeline.get("injectedAt"))
    if start is None:
        return "(no kill happened)"
    points = [(label, parse_rfc3339(timeline.get(key))) for key, label in MILESTONES]
    known = [(label, t) for label, t in points if t is not None]
    span = max((t - start for _, t in known), default=0.0) or 1.0
    lines = []
    for label, t in known:
        offset = t - start
        bar = "█" * max(1, round(offset / span * width)) if offset > 0 else "▏"
        lines.append(f"{label:>11} {bar} +{offset:.1f}s")
    return "\n".join(lines)


def build(obj: dict[str, Any], ticket: Ticket | None) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "phase": status.get("phase"),
        "verdict": status.get("verdict"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "victim": status.get("victim") and {k: v for k, v in status["victim"].items() if k != "manifest"},
        "timeline": status.get("timeline") or {},
        "metrics": status.get("metrics") or {},
        "incident": status.get("incident"),
        "detection": (status.get("detection") or {}).get("sources") or [],
        "diagnosis": status.get("diagnosis"),
        "diagnosisMarkdown": ticket.diagnosis_markdown if ticket else None,
        "ticketSignals": ticket.signals if ticket else None,
        "impact": status.get("impact"),
        "history": status.get("history") or [],
    }


def detection_table(sources: list[dict[str, Any]], injected_at: str | None) -> list[str]:
    """Who noticed, when (seconds after the kill, from the servers' own times), and why not."""
    if not sources:
        return []
    kill = parse_rfc3339(injected_at)

    def after(moment: str | None) -> str:
        at = parse_rfc3339(moment)
        return "-" if at is None or kill is None else f"+{at - kill:.1f}s"

    lines = [
        "",
        "## Detection",
        "",
        "| source | required | state | alert | pending | fired | TTD | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sources:
        ttd = s.get("ttdSeconds")
        about = f" ({s['victim']})" if s.get("victim") else ""  # which victim the alert names
        lines.append(
            f"| {s['name']} ({s['type']}) | {'yes' if s.get('required') else 'no'} | {s['state']} | "
            f"{s.get('alert') or '-'}{about} | "
            f"{after(s.get('pendingAt'))} | {after(s.get('firingAt'))} | "
            f"{'-' if ttd is None else f'{ttd:.1f}s'} | {(s.get('why') or '').replace('|', '/')} |"
        )
    ignored = [(s["name"], i) for s in sources for i in s.get("ignored") or []]
    if ignored:
        lines += ["", "Seen during the drill and ignored (not about it):", ""]
        lines += [
            f"- {i['alert']} ({name}, fired {after(i.get('firingAt'))}): {i['reason']}" for name, i in ignored
        ]
    return lines


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def to_markdown(report: dict[str, Any]) -> str:
    m = report["metrics"]
    victim = report["victim"] or {}
    lines = [
        f"# Chaos drill {report['namespace']}/{report['name']}",
        "",
        f"**{report['verdict'] or report['phase']}** — {report['message'] or ''}",
        "",
        "| | |",
        "|---|---|",
        f"| victim | {victim.get('namespace', '-')}/{victim.get('pod', '-')} (store {victim.get('storeId', '-')}, "
        f"node {victim.get('node', '-')}) |",
        f"| time to detect | {m.get('timeToDetect', '-')} |",
        f"| time to recover | {m.get('timeToRecover', '-')} |",
        *(
            f"| {label} after | {m[key]}s |"
            for key, label in (
                ("podReadySeconds", "pod Ready"),
                ("storeUpSeconds", "store re-registered"),
                ("regionsHealthySeconds", "regions healthy"),
                ("leadersBalancedSeconds", "leaders back"),
            )
            if m.get(key) is not None
        ),
    ]
    incident = report["incident"]
    if incident:
        lines.append(
            f"| ticket | #{incident['ticketId']} {incident['invariant']} ({incident['severity']}); "
            f"signals: {', '.join(report['ticketSignals'] or incident.get('signals') or [])} |"
        )
    lines += detection_table(report["detection"], report["timeline"].get("injectedAt"))
    lines += ["", "## Timeline", "", "```", timeline_picture(report["timeline"]), "```", ""]
    lines += [f"- {key}: {value}" for key, value in report["timeline"].items()]
    d = report["diagnosis"]
    if d:
        lines += [
            "",
            "## Diagnosis",
            "",
            f"*{d['rootCauseCategory']}*, severity {d['severity']}, confidence {d['confidence']}, by "
            f"{d['diagnoser']}{' (' + d['model'] + ')' if d.get('model') else ''}"
            f"{'; fell back: ' + d['fallbackReason'] if d.get('fallbackReason') else ''}. "
            f"Matches the injected fault: **{d['matchesInjectedFault']}** ({d['gradeReason']}).",
            "",
        ]
        lines.append(report["diagnosisMarkdown"] or d["summary"])
    if report["history"]:
        lines += [
            "",
            "## Earlier runs",
            "",
            "| generation | verdict | victim | TTD | TTR | cause |",
            "|---|---|---|---|---|---|",
        ]
        for h in report["history"]:
            lines.append(
                f"| {h.get('generation')} | {h.get('verdict')} | {h.get('victim')} | "
                f"{h.get('timeToDetectSeconds')} | {h.get('timeToRecoverSeconds')} | "
                f"{h.get('rootCauseCategory')} |"
            )
    return "\n".join(lines) + "\n"
