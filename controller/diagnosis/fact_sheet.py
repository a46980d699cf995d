"""The derived facts as numbered lines ([F1]..[Fn]) that name the evidence they rest on.

Both diagnosers reason from these: the offline rules cite them by id, and the model sees them in
its evidence with the ids of the items ([E1]..) each rests on, so it can check a fact against its
source and cite either. A question no source can answer is a fact too ("unknown, because ..."),
so the model is not left to guess whether it was asked.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from controller.diagnosis.facts import ClusterFacts, StoreFact
from controller.diagnosis.liveness import Answer

# Stores given their full set of facts; the overview names the rest (a budget, not a limit on
# what the rules see).
STORES_WITH_FACTS = 6
QUESTIONS = (
    ("alive", "process running now"),
    ("restarted", "restarted in this incident"),
    ("reachable_from_pd", "reachable from PD"),
    ("reachable_from_peers", "reachable from its peers"),
    ("reachable_from_monitor", "reachable from the monitor over the window"),
)


class FactLine(BaseModel):
    id: str
    key: str  # stable logical name: "store:3:alive", "regions:majority", "pd:leader"
    text: str
    rests_on: list[str] = Field(default_factory=list)  # evidence ids ([E3], ...)

    def render(self) -> str:
        cited = f" ({', '.join(self.rests_on)})" if self.rests_on else ""
        return f"[{self.id}] {self.text}{cited}"


class _Sheet:
    def __init__(self, evidence_id: Callable[[str], str | None]) -> None:
        self.lines: list[FactLine] = []
        self.evidence_id = evidence_id

    def add(self, key: str, text: str, sources: list[str]) -> None:
        ids = [i for s in dict.fromkeys(sources) if (i := self.evidence_id(s))]
        self.lines.append(FactLine(id=f"F{len(self.lines) + 1}", key=key, text=text, rests_on=ids))


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _answer_text(answer: Answer) -> str:
    if not answer.findings:
        return f"unknown: {answer.unknown_because or 'no source answers it'}"
    return f"{_yes_no(answer.verdict)}: " + "; ".join(f.words for f in answer.findings)


def _store_facts(sheet: _Sheet, fact: StoreFact) -> None:
    who = f"store {fact.store_id} ({fact.pod})" if fact.store_id is not None else fact.pod
    live = fact.liveness
    for name, question in QUESTIONS:
        answer: Answer = getattr(live, name)
        sheet.add(
            f"store:{fact.store_id}:{name}",
            f"{who} {question}: {_answer_text(answer)}",
            [f.source.value for f in answer.findings],
        )
    for p in live.pressure:
        sheet.add(
            f"store:{fact.store_id}:pressure", f"{who} under {p.kind.value} pressure: {p.words}", [p.source]
        )


def _majority_fact(sheet: _Sheet, facts: ClusterFacts) -> None:
    if facts.regions_known is not None:
        text = (
            f"regions without a Raft majority of healthy voters: {len(facts.regions_without_majority)} of "
            f"{facts.regions_known} (PD's region list, with the stores above counted away)"
        )
    elif facts.majority_estimate is not None:
        text = f"Raft majority, from the stores and max-replicas alone: {facts.majority_estimate}"
    else:
        text = "Raft majority: unknown (PD's stores and regions were not available)"
    sheet.add("regions:majority", text, ["stores"])


def _pd_facts(sheet: _Sheet, facts: ClusterFacts) -> None:
    for m in facts.pd_member_liveness:
        role = " (leader)" if m.leader else " (lost the leadership)" if m.lost_leadership else ""
        sheet.add(
            f"pd:member:{m.name}",
            f"PD member {m.name}{role} healthy: {_answer_text(m.healthy)}",
            [f.source.value for f in m.healthy.findings],
        )
    if facts.pd_member_liveness and facts.pd_leader is None:
        sheet.add("pd:leader", "PD leader: not named by any source", ["pd", "ticket"])


def fact_sheet(facts: ClusterFacts, evidence_id: Callable[[str], str | None]) -> list[FactLine]:
    """``evidence_id`` turns a source key ("stores", "metrics") into its evidence id, or None when
    that source is not in the bundle."""
    sheet = _Sheet(evidence_id)
    stores = list(facts.affected)
    if facts.ticket_store is not None and facts.ticket_store not in stores:
        stores.insert(0, facts.ticket_store)
    for fact in stores[:STORES_WITH_FACTS]:
        _store_facts(sheet, fact)
    _majority_fact(sheet, facts)
    _pd_facts(sheet, facts)
    return sheet.lines
