"""What a kill costs clients, on the emulator's clock at 0.3 of real time (TiKV's 10-20 s election
takes 3-6 s), as TiKV's own client meets it: the drill's prober (spec.impact.probe) reads one key
per region through PD; reads of the victim's regions stall until their followers elect new
leaders, every other region keeps answering, and nothing fails before the kill. The figures are
compared with the emulator's own record of the election. An SLO set below that fails the drill,
naming the figure; a generous one passes. A drill with no client at all says so instead of
reporting "no cost". With a key prefix the prober writes too, only its own keys, and removes them
after. The HTML report, opened in headless Chromium, shows both views."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from controller.client_probe.targets import KEY_SUFFIX
from controller.emulator.model import ELECTION_TIMEOUT
from controller.operator.impact import NO_TRAFFIC
from controller.timefmt import parse_rfc3339
from controller.ui import html_report, report
from tests.support.browser import browser_page
from tests.support.drills import DrillEnv, started_drill_env
from tests.support.rust_client import run_client

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
TIME_SCALE = 0.3
PROBE = {"enabled": True, "requestsPerSecond": 40, "deadlineSeconds": 1.0, "baselineSeconds": 1}


# The key the prober would write under "t" in the first region (which starts at ""): written
# first by someone else.
FOREIGN_KEY = b"t" + KEY_SUFFIX
SEED_FOREIGN = """
async def main(pd, key):
    client = await RawClient.connect([pd])
    await client.put(bytes.fromhex(key), b"someone else's")
"""
SCAN_T = """
async def main(pd):
    client = await RawClient.connect([pd])
    pairs = await client.scan(b"t", b"u", 10240)
    print(json.dumps({bytes(k).hex(): bytes(v).decode() for k, v in pairs}))
"""


def _election(env: DrillEnv, pod: str) -> dict[str, Any]:
    return next(e for e in reversed(env.cluster.admin_state()["elections"]) if e["pod"] == pod)


def test_a_kill_costs_clients_until_the_election_and_slos_judge_it(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(time_scale=TIME_SCALE, scrape_interval=1.0)
    env = started_drill_env(cluster, tmp_path / "drill")
    try:
        # First, before any client has sent anything: a drill with no client at all.
        env.drill("silent", {"target": {"pod": "tikv-0"}})
        silent = env.wait_phase("silent", TERMINAL, timeout=60)
        env.wait_no_open_tickets(60)
        env.drill(
            "strict",
            {"target": {"pod": "tikv-1"}, "impact": {"probe": PROBE}, "slo": {"maxUnavailableSeconds": 0.2}},
        )
        strict = env.wait_phase("strict", TERMINAL, timeout=60)
        strict_election = _election(env, "tikv-1")
        env.wait_no_open_tickets(60)
        # The generous drill's prober also writes, under "t" (every region holds part of it
        # here); one key it would write already holds someone else's value. 47 keys at 40 a
        # second: a 3 s baseline writes each of its keys at least twice before the kill.
        run_client(cluster, SEED_FOREIGN, FOREIGN_KEY.hex())
        env.drill(
            "generous",
            {
                "target": {"pod": "tikv-2"},
                "impact": {"probe": {**PROBE, "writes": "t", "baselineSeconds": 3}},
                "slo": {"maxErrorRatio": 1.0, "maxP99Seconds": 5, "maxUnavailableSeconds": 120},
            },
        )
        generous = env.wait_phase("generous", TERMINAL, timeout=60)
        left_under_t = json.loads(run_client(cluster, SCAN_T))

        strict_obj, silent_obj = env.get("strict"), env.get("silent")
    finally:
        env.stop()

    client = strict["impact"]["client"]
    assert "error" not in client, client
    # Nothing failed before the kill; reads stalled during the election. A read may stall
    # without a fault when the machine is starved for its deadline (a CI box running two workers
    # on two cores): such a blip is told apart from an outage by its length, never hidden.
    before, during = client["before"], client["during"]
    assert before["requests"] > 0 and before["failed"] == 0 and before["stalled"] <= 1, client
    assert during["failed"] + during["stalled"] > 0, client
    # The truth: the emulator's record of the victim's regions electing new leaders. The prober
    # read each region at most probeIntervalSeconds apart (the longest gap it measured; never
    # under its cadence, regions / rate), so each edge is known to within it.
    truth = strict_election["elected_at"] - strict_election["died_at"]
    interval, cadence = client["probeIntervalSeconds"], client["regions"] / client["requestsPerSecond"]
    assert interval >= cadence * 0.9, client
    assert truth >= ELECTION_TIMEOUT[0] * TIME_SCALE
    victim_regions = set(strict_election["regions"])
    listed = {r["regionId"]: r for r in client["unavailableRegions"]}
    assert victim_regions <= set(listed), (client, strict_election)
    for region_id in victim_regions:
        assert listed[region_id]["unavailableSeconds"] == pytest.approx(truth, abs=interval), (
            listed[region_id],
            strict_election,
        )
    blips = [r for region_id, r in listed.items() if region_id not in victim_regions]
    assert all(r["unavailableSeconds"] <= 2 * interval for r in blips), ("an outage of a live region", blips)
    assert client["regionsUnavailable"] == len(victim_regions) + len(blips), client
    # The run waited for the client to be answered again: no figure is cut short.
    assert client.get("regionsStillUnavailable", 0) == 0, client
    blip_seconds = sum(r["unavailableSeconds"] for r in blips)
    assert truth - interval <= client["unavailableSeconds"] <= truth + interval + blip_seconds, (
        client,
        strict_election,
    )
    # Failed or stalled reads: while a victim's region had no leader it was read at least every
    # `interval` and at most every `cadence`, and each such read failed or stalled (one either
    # way at each edge). The reads are "during" the drill: its window closes when the cluster is
    # whole and the leaders are elected, whichever is later.
    victims = len(victim_regions)
    bad = during["failed"] + during["stalled"]
    blip_reads = sum(r["failed"] + r["stalled"] for r in blips)
    assert victims * (truth / interval - 2) <= bad <= victims * (truth / cadence + 2) + blip_reads, (
        bad,
        victims,
        truth,
        interval,
        cadence,
    )
    # A stalled read counts with the time it took to give up on it: the p99 says so.
    assert client["during"]["p99Seconds"] >= PROBE["deadlineSeconds"], client
    # PD's view of the same election: the victim's regions had no leader from the kill to
    # leadersElectedAt (the timeline), no sooner than the election timeout.
    impact, timeline = strict["impact"], strict["timeline"]
    leaderless = parse_rfc3339(timeline["leadersElectedAt"]) - parse_rfc3339(timeline["injectedAt"])
    assert impact["leaderlessSeconds"] == pytest.approx(leaderless, abs=0.002), (impact, timeline)
    # The server's view: TiKV counts no gRPC failure for a request that met a dead leader (the
    # client retries; a region error is a successful response), so its error ratio stays 0 while
    # the client stalled. That is why the client's figures are the ones judged.
    assert impact["during"]["requestsPerSecond"] > 0 and impact["worst"]["errorRatio"] == 0, impact
    assert (strict["verdict"], strict["reason"]) == ("Fail", "SLOBreached"), strict
    assert "spec.slo.maxUnavailableSeconds 0.2" in strict["message"] and "TiKV's client" in strict["message"]
    assert generous["verdict"] == "Pass", generous
    assert generous["impact"]["client"]["during"]["stalled"] > 0, generous["impact"]
    # Its writes: every region but the one whose key was someone else's, stalled on the victim's
    # regions; afterwards nothing of the prober's is left under "t", the other key untouched.
    writes = generous["impact"]["client"]["writes"]
    assert (writes["keyPrefix"], writes["regions"], writes["foreignKeys"]) == ("t", 23, 1), writes
    assert writes["before"]["failed"] + writes["before"]["stalled"] <= 1, writes
    assert writes["during"]["failed"] + writes["during"]["stalled"] > 0, writes
    assert left_under_t == {FOREIGN_KEY.hex(): "someone else's"}, (left_under_t, writes)
    assert writes["written"] == 23 and writes["removed"] == 23 and "error" not in writes, writes
    # No client at all: said plainly, never reported as a fault that cost nothing.
    assert silent["impact"].get("note") == NO_TRAFFIC and "client" not in silent["impact"], silent["impact"]

    page_file = tmp_path / "strict.html"
    page_file.write_text(html_report.to_html(report.build(strict_obj, None)))
    silent_file = tmp_path / "silent.html"
    silent_file.write_text(html_report.to_html(report.build(silent_obj, None)))
    asyncio.run(_check_rendered(page_file, tmp_path / "strict.png", silent_file))


async def _check_rendered(page_file: Path, screenshot: Path, silent_file: Path) -> None:
    async with browser_page() as page:
        await page.open(silent_file.as_uri())
        note = await page.evaluate("document.getElementById('impact-note').textContent")
        assert NO_TRAFFIC in note, note
        assert await page.evaluate("document.getElementById('impact-figures')") is None
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
        client_rows = await page.evaluate("document.querySelectorAll('#client-impact tr').length")
        assert client_rows == 4
        await page.screenshot(screenshot)
        assert page.errors == [], page.errors
    assert screenshot.stat().st_size > 20_000
