"""Whether regions kept their Raft majority, from the stores and max-replicas alone (PD's region
list unavailable): what can be known, and saying so when it cannot."""

from __future__ import annotations

import pytest

from controller.pd.quorum import estimate_majority


@pytest.mark.parametrize(
    ("stores", "away", "replicas", "lost"),
    [
        (3, 0, 3, False),
        (3, 1, 3, False),  # 2 of 3 voters left: every region keeps its majority
        (3, 2, 3, True),  # every store holds a replica of every region
        (5, 1, 3, False),
        (5, 2, 3, None),  # depends on which regions have replicas on both
        (5, 3, 3, None),  # a region with 2 replicas on the 2 stores left keeps it: placement decides
        (5, 4, 3, True),  # 1 store left, fewer than the 2 votes any region needs
        (5, 4, 5, True),
        (5, 2, 5, False),  # 5 replicas need 3: 3 left on every region
        (7, 3, 5, None),
        (3, 2, None, None),  # max-replicas unknown: nothing can be said
    ],
)
def test_what_the_stores_alone_say(stores: int, away: int, replicas: int | None, lost: bool | None) -> None:
    estimate = estimate_majority(stores, away, replicas)
    assert estimate.lost is lost, estimate
    if replicas is not None:
        assert f"{away} of {stores} stores away" in estimate.words
    if lost is None:
        assert "only PD's region list says" in estimate.words or "unknown" in estimate.words
