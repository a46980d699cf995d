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


def _coverage_of_ten_drills() -> Any:
    """Ten drills of three faults, as the controller records them: the standard rules, a user's
    rule with a long name, the page and the monitor's ticket."""
    from controller.coverage.records import DrillRecord, SourceOutcome, VictimRef
    from controller.coverage.summary import Proposal, summarize

    def outcome(name: str, ttd: float | None, why: str = "") -> SourceOutcome:
        state = "Detected" if ttd is not None else "Missed"
        kind = {"tickets": "tickets", "page": "alertmanager-notification"}.get(name, "prometheus")
        rules = [name] if kind == "prometheus" else []
        return SourceOutcome(
            name=name, type=kind, state=state, ttd_seconds=ttd, why=why or None, alertnames=rules
        )

    plan = [("pod-kill", 4), ("store-outage", 3), ("pd-leader-kill", 3)]
    drills = []
    for fault, count in plan:
        for i in range(count):
            kill = KILL + 3600 * len(drills)
            drills.append(
                DrillRecord(
                    uid=f"u{len(drills)}",
                    generation=1,
                    namespace="drills",
                    name=f"{fault}-{i}",
                    fault=fault,
                    verdict="Pass",
                    injected_at=kill,
                    window_end=kill + 150,
                    target_namespace="tikv",
                    pd_address="http://pd:2379",
                    victims=[VictimRef(pod=f"tikv-{i}", namespace="tikv")],
                    sources=[
                        outcome("tickets", 1.1 + i / 10),
                        outcome(
                            "TiKV_node_restart",
                            64.0 + 4 * i if fault != "store-outage" else None,
                            "no restart",
                        ),
                        outcome(
                            "PD_cluster_lost_connect_store_nums",
                            78.0 + i if fault == "store-outage" else None,
                            f"needs the store Disconnected in PD; the store was back after {2 + i / 10:.1f}s",
                        ),
                        outcome(
                            "team-platform-tikv-store-unreachable-long-name", None, "short of its for: 5m"
                        ),
                        outcome("page", 70.0 + 4 * i if fault == "pod-kill" else None, "did not fire"),
                    ],
                )
            )
    coverage = summarize(drills, since=0, until=KILL + 3600 * 10)
    proposal = Proposal(
        name="TiKVRestartedRecently",
        expr='changes(process_start_time_seconds{job="tikv"}[1m]) > 0',
        for_seconds=0,
        meaning="a TiKV process that started again",
        fired=4,
        drills=4,
        delays=[16.0, 18.0, 18.5, 21.0],
    )
    faults = [
        f.model_copy(update={"proposals": [proposal]}) if f.missed_by_some else f for f in coverage.faults
    ]
    return coverage.model_copy(update={"faults": faults})


STRIP_BOXES = """
[...document.querySelectorAll('svg.ttd-strip')].map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    svg: {left: box.left, right: box.right, top: box.top, bottom: box.bottom},
    texts: [...svg.querySelectorAll('text')].map(t => {
      const r = t.getBoundingClientRect();
      return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    }),
    dots: svg.querySelectorAll('circle.dot').length,
  };
})
"""


async def _coverage_page(page_file: Path, screenshot: Path) -> dict[str, Any]:
    async with browser_page() as page:
        await page.open(page_file.as_uri())
        strips = await page.evaluate(STRIP_BOXES)
        rows = await page.evaluate("document.querySelectorAll('table.coverage tr').length")
        proposals = await page.evaluate(
            "[...document.querySelectorAll('ul.prop li')].map(li => li.textContent)"
        )
        # Nothing wider than the page: no table runs off its right edge.
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        summary = await page.evaluate("document.getElementById('summary').textContent")
        assert not page.errors, page.errors
        await page.screenshot(screenshot)
        return {
            "strips": strips,
            "rows": rows,
            "proposals": proposals,
            "overflow": overflow,
            "summary": summary,
        }


def test_the_coverage_page_of_ten_drills_reads_cleanly_in_chromium(tmp_path: Path) -> None:
    from controller.coverage import page as coverage_page

    coverage = _coverage_of_ten_drills()
    page_file = tmp_path / "coverage.html"
    page_file.write_text(coverage_page.to_html(coverage))
    shown = asyncio.run(_coverage_page(page_file, tmp_path / "coverage.png"))
    assert len(shown["strips"]) == 3, "one strip per fault drilled"
    # A dot per caught drill, per source: exactly the summary's count.
    assert [s["dots"] for s in shown["strips"]] == [sum(x.caught for x in f.sources) for f in coverage.faults]
    assert shown["rows"] == sum(len(f.sources) + 1 for f in coverage.faults)
    assert any("in 4 of 4 drills" in p for p in shown["proposals"]), shown["proposals"]
    assert shown["overflow"] <= 0, f"the page is {shown['overflow']}px wider than the window"
    assert "1970" not in shown["summary"] and "2025-06-15 15:06 UTC" in shown["summary"], shown["summary"]
    for strip in shown["strips"]:
        texts, svg = strip["texts"], strip["svg"]
        for i, a in enumerate(texts):
            assert svg["left"] <= a["left"] and a["right"] <= svg["right"] + 0.5, (a, svg)
            for b in texts[i + 1 :]:
                assert not _overlap(a, b), (a, b)
    assert (tmp_path / "coverage.png").stat().st_size > 10_000
