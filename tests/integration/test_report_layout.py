"""The drill report's timeline in headless Chromium: with moments seconds apart (kill, ticket,
pod Ready, store re-registered, diagnosed within 3 s) and sources firing a minute later, no two
texts overlap on the rendered page (their bounding boxes, as the browser lays them out) and none
leaves the picture."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controller.timefmt import format_rfc3339
from controller.ui import html_report, report
from tests.support.browser import browser_page

pytestmark = pytest.mark.integration
KILL = 1_750_000_000.0


def _drill(moments: dict[str, float], sources: list[tuple[str, float]]) -> dict[str, Any]:
    timeline = {"injectedAt": format_rfc3339(KILL)} | {
        k: format_rfc3339(KILL + v) for k, v in moments.items()
    }
    return {
        "metadata": {"name": "crowded", "namespace": "drills"},
        "status": {
            "phase": "Completed",
            "verdict": "Pass",
            "timeline": timeline,
            "detection": {
                "sources": [
                    {
                        "name": name,
                        "type": "prometheus",
                        "state": "Detected",
                        "firingAt": format_rfc3339(KILL + at),
                    }
                    for name, at in sources
                ]
            },
        },
    }


CROWDED = _drill(
    {
        "detectedAt": 0.9,
        "podReadyAt": 1.4,
        "storeUpAt": 1.9,
        "diagnosedAt": 2.2,
        "regionsHealthyAt": 2.5,
        "recoveredAt": 2.6,
        "leadersElectedAt": 2.9,
        "leadersBalancedAt": 61.0,
    },
    [("restart-rule", 64.1), ("alertmanager", 64.3), ("page", 70.2), ("user-rule", 64.1)],
)
# Everything within a second: the densest picture a drill makes.
INSTANT = _drill(
    {"detectedAt": 0.2, "podReadyAt": 0.3, "storeUpAt": 0.35, "diagnosedAt": 0.4, "recoveredAt": 0.5},
    [("a-very-long-detection-source-name", 0.45)],
)

BOXES = """
(() => {
  const svg = document.getElementById('timeline').getBoundingClientRect();
  const texts = [...document.querySelectorAll('#timeline text')].map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  });
  return {svg: {left: svg.left, right: svg.right, top: svg.top, bottom: svg.bottom}, texts};
})()
"""


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and b["top"] < a["bottom"] - 0.5
    )


async def _boxes(page_file: Path) -> dict[str, Any]:
    async with browser_page() as page:
        await page.open(page_file.as_uri())
        result: dict[str, Any] = await page.evaluate(BOXES)
        assert not page.errors, page.errors
        return result


@pytest.mark.parametrize("drill", [CROWDED, INSTANT], ids=["crowded", "instant"])
def test_no_timeline_text_overlaps_another_in_chromium(drill: dict[str, Any], tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(html_report.to_html(report.build(drill, None)))
    boxes = asyncio.run(_boxes(page_file))
    texts, svg = boxes["texts"], boxes["svg"]
    labels = [t for t in texts if "+" in t["text"] and not t["text"].startswith("+")]
    assert len(labels) == 1 + len(drill["status"]["timeline"]) - 1 + len(
        drill["status"]["detection"]["sources"]
    )
    for i, a in enumerate(texts):
        assert svg["left"] <= a["left"] and a["right"] <= svg["right"] + 0.5, (a, svg)
        assert svg["top"] <= a["top"] and a["bottom"] <= svg["bottom"] + 0.5, (a, svg)
        for b in texts[i + 1 :]:
            assert not _overlap(a, b), (a, b)
