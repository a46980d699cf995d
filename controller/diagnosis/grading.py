"""Grade a diagnosis against the fault the drill injected (``matchesInjectedFault``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from controller.diagnosis.schema import DiagnosisOutput, RootCauseCategory

# Which categories correctly explain each fault action.
EXPECTED_CATEGORIES = {
    "pod-kill": {RootCauseCategory.TIKV_POD_FAILURE},
    # The store's process is gone while its pod stays: a responder sees a store that stopped
    # answering and stays away (Disconnected, then Down), not a pod that died and came back.
    "store-outage": {RootCauseCategory.TIKV_STORE_DOWN},
    # The leader's pod died and the others elected a new one: leader loss, not PD being down.
    "pd-leader-kill": {RootCauseCategory.PD_LEADER_LOSS},
    # The store's process runs on while PD (and its peers) cannot reach it.
    "network-partition": {RootCauseCategory.NETWORK_PARTITION},
}


@dataclass(frozen=True)
class Grade:
    matches: bool
    reason: str


def names(text: str, name: str) -> bool:
    """``name`` as a whole word: tikv-1 is not named by tikv-10, nor store 1 by store 12."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def grade(
    diagnosis: DiagnosisOutput,
    *,
    action: str,
    pod: str,
    store_id: int | None,
    others: tuple[tuple[str, int], ...] = (),
) -> Grade:
    """Right when the category explains the fault and the diagnosis names the victim (its pod or
    its store) — every victim, when the fault took several (``others``: their pods and stores)."""
    expected = EXPECTED_CATEGORIES.get(action, set())
    if diagnosis.root_cause_category not in expected:
        wanted = ", ".join(sorted(c.value for c in expected)) or "nothing known"
        return Grade(False, f"category {diagnosis.root_cause_category.value}, expected {wanted}")
    text = f"{diagnosis.summary} {diagnosis.root_cause}"
    for victim_pod, victim_store in ((pod, store_id), *others):
        named = names(text, victim_pod) or (victim_store is not None and names(text, f"store {victim_store}"))
        if not named:
            return Grade(False, f"right category but names neither pod {victim_pod} nor store {victim_store}")
    victims = ", ".join([pod, *(p for p, _ in others)])
    return Grade(True, f"{diagnosis.root_cause_category.value} on {victims}")
