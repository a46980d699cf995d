"""A scenario suite for diagnosers: YAML cases scored deterministically.

A case gives the diagnosis input (with compact forms for stores, regions, PD and pods), why its
answer is right (``why``, required), and what a correct diagnosis must do: the category, a
severity range, the evidence it must cite (by logical key: ticket, cluster, stores, metrics,
events, ...), the evidence that must be absent (the drill record when blind, the default), the
pods its summary must name, and words it must not claim (another pod, an unrelated cause).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.diagnosis.grading import names
from controller.diagnosis.inputs import DiagnosisInput
from controller.diagnosis.service import DiagnosisResult, diagnose


@dataclass
class Scenario:
    name: str
    description: str
    why: str
    data: DiagnosisInput
    blind: bool
    expect: dict[str, Any]


@dataclass
class ScenarioScore:
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _store_json(entry: dict[str, Any], now: float) -> dict[str, Any]:
    """Expand ``{id, pod, state, heartbeat_age, start, leaders}`` into PD's store JSON."""
    if "store" in entry:
        return entry
    ns = entry.get("namespace", "tikv")
    return {
        "store": {
            "id": entry["id"],
            "address": f"{entry['pod']}.tikv-peer.{ns}.svc:20160",
            "status_address": f"{entry['pod']}.tikv-peer.{ns}.svc:20180",
            "state_name": entry.get("state", "Up"),
            "start_timestamp": int(entry.get("start", now - 3600)),
            "last_heartbeat": int((now - float(entry.get("heartbeat_age", 2))) * 1e9),
        },
        "status": {"leader_count": entry.get("leaders", 8), "region_count": entry.get("regions", 24)},
    }


def _regions_json(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Expand ``{id, stores, down, pending, learners}`` (or ``{every: N, stores}`` for N regions on
    the same stores) into PD's regions JSON."""
    regions: list[dict[str, Any]] = []
    for entry in entries:
        count = int(entry.get("every", 1))
        for n in range(count):
            rid = int(entry.get("id", len(regions) + 1)) + n
            peer = lambda sid, rid=rid: {"id": rid * 100 + sid, "store_id": sid}  # noqa: E731
            learners = set(entry.get("learners", []))
            regions.append(
                {
                    "id": rid,
                    "peers": [
                        {**peer(sid), "role_name": "Learner" if sid in learners else "Voter"}
                        for sid in entry["stores"]
                    ],
                    "leader": peer(entry["stores"][0]),
                    "down_peers": [{"down_seconds": 30, "peer": peer(sid)} for sid in entry.get("down", [])],
                    "pending_peers": [peer(sid) for sid in entry.get("pending", [])],
                }
            )
    return {"count": len(regions), "regions": regions}


def _pd_json(entry: dict[str, Any]) -> dict[str, Any]:
    members = [
        {"name": m["name"], "member_id": i + 1, "health": m.get("health", True)}
        for i, m in enumerate(entry.get("members", []))
    ]
    return {"members": members, "leader": entry.get("leader")}


def load_scenario(path: Path) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    data = dict(raw["input"])
    now = float(data.get("now", 10_000.0))
    data["now"] = now
    ticket = data["ticket"]
    ticket.setdefault("last_seen_at", ticket["opened_at"])
    ticket.setdefault("status", "open")
    ticket.setdefault("cluster", "scenario")
    if data.get("stores") is not None:
        data["stores"] = [_store_json(s, now) for s in data["stores"]]
    if data.get("regions") is not None:
        data["regions"] = _regions_json(data["regions"])
    if data.get("pd") is not None:
        data["pd"] = _pd_json(data["pd"])
    for t in data.get("recent_tickets", []):
        t.setdefault("last_seen_at", t["opened_at"])
        t.setdefault("status", "resolved")
        t.setdefault("cluster", "scenario")
    if not raw.get("why"):
        raise ValueError(f"{path.name}: every case says why its answer is right ('why:')")
    return Scenario(
        name=raw.get("name", path.stem),
        description=raw.get("description", ""),
        why=raw["why"],
        data=DiagnosisInput.model_validate(data),
        blind=bool(raw.get("blind", True)),
        expect=raw["expect"],
    )


def load_suite(directory: Path) -> list[Scenario]:
    return [load_scenario(p) for p in sorted(directory.glob("*.yaml"))]


def score(scenario: Scenario, result: DiagnosisResult) -> ScenarioScore:
    out = result.output
    expect = scenario.expect
    s = ScenarioScore(scenario.name)
    if out.root_cause_category.value != expect["category"]:
        s.failures.append(f"category {out.root_cause_category.value} != {expect['category']}")
    if "severity" in expect and out.severity.value not in expect["severity"]:
        s.failures.append(f"severity {out.severity.value} not in {expect['severity']}")
    if "confidence" in expect and out.confidence.value not in expect["confidence"]:
        s.failures.append(f"confidence {out.confidence.value} not in {expect['confidence']}")
    cited = {c.id for c in out.evidence}
    for key in expect.get("cite", []):
        eid = result.bundle.id_for(key)
        if eid is None:
            s.failures.append(f"evidence {key!r} missing from the context")
        elif eid not in cited:
            s.failures.append(f"did not cite {key} ({eid})")
    for key in expect.get("absent", []):
        if result.bundle.id_for(key) is not None:
            s.failures.append(f"evidence {key!r} should have been withheld")
    text = f"{out.summary} {out.root_cause}".lower()
    for phrase in expect.get("must_not_claim", []):
        if phrase.lower() in text:
            s.failures.append(f"claims {phrase!r}")
    for phrase in expect.get("must_mention", []):
        if phrase.lower() not in text:
            s.failures.append(f"does not mention {phrase!r}")
    for pod in expect.get("summary_names", []):
        if not names(out.summary, pod):
            s.failures.append(f"summary does not name {pod}")
    return s


async def pass_rate(directory: Path) -> tuple[int, list[ScenarioScore]]:
    """The offline rules over one folder of cases: how many passed, and every case's score."""
    scores = [
        score(s, await diagnose(s.data, provider="offline", blind=s.blind)) for s in load_suite(directory)
    ]
    return sum(s.passed for s in scores), scores


async def _main(directories: list[str]) -> int:
    failed = 0
    for directory in directories:
        passed, scores = await pass_rate(Path(directory))
        print(f"{directory}: offline rules pass {passed}/{len(scores)}")
        for s in scores:
            if not s.passed:
                print(f"  FAIL {s.name}: {'; '.join(s.failures)}")
        failed += len(scores) - passed
    return 1 if failed else 0


if __name__ == "__main__":
    import asyncio
    import sys

    sys.exit(asyncio.run(_main(sys.argv[1:] or ["tests/scenarios", "tests/scenarios_external"])))
