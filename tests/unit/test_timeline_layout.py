"""The drill report's timeline labels: however close the moments, no two labels overlap and
none leaves the picture; each detection source is marked at its own firing time."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.timefmt import format_rfc3339
from controller.ui.html_report import CHAR_WIDTH, place_labels, timeline_svg

KILL = 1_000.0
NAMES = ["ticket", "diagnosis", "pod Ready", "store re-registered", "regions healthy", "whole again (TTR)"]


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1, max_size=12))
def test_no_two_labels_in_a_lane_overlap_at_any_spread(offsets: list[float]) -> None:
    marks = [(0.0, "kill", "kill")] + [(o, f"source-{i} fired", "detect") for i, o in enumerate(offsets)]
    span = max(max(o for o, _, _ in marks), 1.0)
    left, right = 30.0, 990.0
    labels = place_labels(marks, left, right, (right - 160 - left) / span)
    assert len(labels) == len(marks)
    for i, a in enumerate(labels):
        assert left - 1 <= a.span[0] and a.span[1] <= right + 1, a
        for b in labels[i + 1 :]:
            assert a.lane != b.lane or not _overlaps(a.span, b.span), (a, b)


def _report(moments: dict[str, float], sources: list[tuple[str, float]]) -> dict:
    timeline = {"injectedAt": format_rfc3339(KILL)} | {
        k: format_rfc3339(KILL + v) for k, v in moments.items()
    }
    return {
        "timeline": timeline,
        "detection": [
            {"name": name, "type": "prometheus", "firingAt": format_rfc3339(KILL + at)}
            for name, at in sources
        ],
    }


def test_each_source_is_marked_at_its_own_firing_time() -> None:
    svg = timeline_svg(_report({"recoveredAt": 3.0}, [("restart-rule", 64.2), ("page", 70.9)]))
    assert "restart-rule fired +64.2s" in svg and "page fired +70.9s" in svg
    xs = {m: float(x) for x, m in re.findall(r'cx="([0-9.]+)" cy="[0-9.]+" r="5" data-label="([^"]+)"', svg)}
    assert xs["kill"] < xs["whole again (TTR)"] < xs["restart-rule fired"] < xs["page fired"], xs
    assert CHAR_WIDTH > 5
