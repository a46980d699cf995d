"""What a kill costs clients, on the emulator's clock at 0.3 of real time (TiKV's 10-20 s election
takes 3-6 s): requests for the victim's regions fail until their followers elect new leaders, and
none fail before the kill. An SLO set below that fails the drill, naming the figure; a generous one passes. The HTML
report of the drill, opened in headless Chromium, shows the timeline and the curves."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from controller.emulator.model import ELECTION_TIMEOUT
from controller.timefmt import parse_rfc3339
from controller.ui import html_report, report
from tests.support.browser import browser_page
from tests.support.drills import DrillEnv, started_drill_env, wait_for

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
LOAD_RPS = 400
TIME_SCALE = 0.3


def _load(env: DrillEnv, rps: int) -> None:
    request = urllib.request.Request(
        f"{env.cluster.admin_url}/emulator/load",
        data=json.dumps({"rps": rps}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_a_kill_costs_clients_until_the_election_and_slos_judge_it(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(time_scale=TIME_SCALE, scrape_interval=1.0)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        _load(env, LOAD_RPS)
        # A baseline of clean requests: Prometheus has seen the whole load for a few seconds.
        rate = "sum(rate(tikv_grpc_msg_duration_seconds_count[5s]))"
        wait_for(
            lambda: env.cluster.prometheus.query(f"{rate} > {0.9 * LOAD_RPS}"),  # type: ignore[union-attr]
            30,
            "Prometheus to see the full load",
        )
        env.drill("strict", {"target": {"pod": "tikv-1"}, "slo": {"maxErrorRatio": 0.01}})
        strict = env.wait_phase("strict", TERMINAL, timeout=60)
        env.drill(
            "generous",
            {
                "target": {"pod": "tikv-2"},
                "slo": {"maxErrorRatio": 1.0, "maxP99Seconds": 5, "maxUnavailableSeconds": 120},
            },
        )
        generous = env.wait_phase("generous", TERMINAL, timeout=60)
        strict_obj = env.get("strict")
    finally:
        env.stop()
    impact = strict["impact"]
    assert "error" not in impact, impact
    # Nothing failed before the kill; requests failed during the election; latency rose with them.
    assert impact["before"]["errorRatio"] == 0 and impact["before"]["requestsPerSecond"] > LOAD_RPS / 2, (
        impact
    )
    # Requests failed for at least the Raft election timeout (10 s, scaled), to the resolution of
    # the scrapes the curves come from.
    assert impact["worst"]["errorRatio"] > 0.05, impact
    assert impact["unavailableSeconds"] >= ELECTION_TIMEOUT[0] * TIME_SCALE - impact["resolutionSeconds"], (
        impact
    )
    assert impact["during"]["p99Seconds"] > impact["before"]["p99Seconds"], impact
    # The victim's regions had no leader until PD showed them led elsewhere: no sooner than the
    # election timeout, and exactly the timeline's kill to leadersElectedAt.
    assert impact.get("regionsWithoutLeader") == strict["victim"]["leadersBefore"] > 0, (
        strict["timeline"],
        impact,
    )
    timeline = strict["timeline"]
    leaderless = parse_rfc3339(timeline["leadersElectedAt"]) - parse_rfc3339(timeline["injectedAt"])
    assert impact["leaderlessSeconds"] == pytest.approx(leaderless, abs=0.002), (impact, timeline)
    assert impact["leaderlessSeconds"] >= ELECTION_TIMEOUT[0] * TIME_SCALE, impact
    assert len(impact["leadersByStore"]) == 3 and impact["series"], impact
    assert (strict["verdict"], strict["reason"]) == ("Fail", "SLOBreached"), strict
    assert "spec.slo.maxErrorRatio 0.01" in strict["message"] and "error ratio" in strict["message"]
    assert generous["verdict"] == "Pass" and generous["impact"]["worst"]["errorRatio"] > 0, generous

    page_file = tmp_path / "strict.html"
    page_file.write_text(html_report.to_html(report.build(strict_obj, None)))
    asyncio.run(_check_rendered(page_file, tmp_path / "strict.png"))


async def _check_rendered(page_file: Path, screenshot: Path) -> None:
    async with browser_page() as page:
        await page.open(page_file.as_uri())
        assert await page.evaluate("document.getElementById('verdict').textContent") == "Fail"
        marks = await page.evaluate(
            "[...document.querySelectorAll('#timeline circle.mark')].map(c => c.dataset.label)"
        )
        assert {
            "kill",
            "ticket",
            "pod Ready",
            "store re-registered",
            "whole again (TTR)",
            "leaders elected",
        } <= set(marks), marks
        # Each mark sits where its time puts it: later moments further right.
        xs = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#timeline circle.mark')]"
            ".map(c => [c.dataset.label, c.getBoundingClientRect().x]))"
        )
        assert xs["kill"] < xs["pod Ready"] < xs["leaders elected"], xs
        paths = await page.evaluate(
            "[...document.querySelectorAll('#impact svg path.curve')].map(p => p.getTotalLength())"
        )
        assert len(paths) == 3 and all(length > 50 for length in paths), paths
        rows = await page.evaluate("document.querySelectorAll('#impact-figures tr').length")
        assert rows == 4
        await page.screenshot(screenshot)
        assert page.errors == [], page.errors
    assert screenshot.stat().st_size > 20_000
