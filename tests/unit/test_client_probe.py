"""The prober's figures from its records, its key choice, its writes' prefix and report, and the
SLO judged on them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controller.client_probe.figures import (
    client_impact,
    still_unavailable,
    unavailable_spans,
    window_figures,
)
from controller.client_probe.model import Outcome, ProbeRecord, ProbeTarget
from controller.client_probe.prober import Prober
from controller.client_probe.targets import key_in
from controller.client_probe.writes import prefix_end
from controller.operator.impact import NO_TRAFFIC, slo_breaches, with_traffic_note
from controller.operator.model import Slo
from controller.operator.state import Impact, ImpactFigures
from controller.pd.models import RegionInfo
from controller.ui import html_report


def rec(region: int, started: float, seconds: float, outcome: Outcome = Outcome.OK) -> ProbeRecord:
    return ProbeRecord(region_id=region, started=started, ended=started + seconds, outcome=outcome)


def test_a_region_is_unavailable_from_its_first_failure_to_its_next_answer() -> None:
    records = [
        rec(1, 0.0, 0.01),
        rec(1, 2.0, 0.5, Outcome.TIMEOUT),
        rec(1, 4.0, 0.3, Outcome.ERROR),
        rec(1, 6.0, 0.01),  # answered at 6.01: region 1 was unavailable from 2.0 to 6.01
        rec(2, 1.0, 0.01),
        rec(2, 3.0, 0.01),
        rec(3, 5.0, 0.5, Outcome.TIMEOUT),  # never answered again: closes at its last request's end
        rec(4, 1.0, 0.5, Outcome.TIMEOUT),
        rec(4, 1.4, 0.9),  # sent during the outage, answered after it (the client's retries)
    ]
    assert unavailable_spans(records) == {1: [(2.0, 6.01)], 3: [(5.0, 5.5)], 4: [(1.0, 2.3)]}


def test_figures_of_a_kill_against_what_happened() -> None:
    # Three regions read every 0.3 s; region 7 stalls from 10.0 to 14.0 (the truth: 4 s).
    records = []
    for i in range(90):
        t = 8.0 + i * 0.1
        region = (5, 6, 7)[i % 3]
        bad = region == 7 and 10.0 <= t < 14.0
        records.append(rec(region, t, 0.5 if bad else 0.002, Outcome.TIMEOUT if bad else Outcome.OK))
    impact = client_impact(records, kill=10.0, recovered=14.5, until=14.5, regions=3, rate=10.0, deadline=0.5)
    assert impact.before is not None and impact.before.failed + impact.before.stalled == 0
    assert impact.during is not None and impact.during.stalled > 0 and impact.during.failed == 0
    assert impact.during.p99_seconds == pytest.approx(0.5)
    assert impact.unavailable_seconds == pytest.approx(4.0, abs=impact.probe_interval_seconds)
    assert impact.regions_unavailable == 1 and impact.unavailable_regions[0].region_id == 7
    assert impact.probe_interval_seconds == pytest.approx(0.3)


def test_the_interval_reported_is_the_longest_gap_measured() -> None:
    # Two regions at 10 requests a second: each read every 0.2 s, until the prober's process
    # is starved for 1.5 s in the middle of the drill. The edges are then known only to 1.7 s.
    starts = [10.0 + i * 0.1 for i in range(20)] + [13.5 + i * 0.1 for i in range(20)]
    records = [rec((1, 2)[i % 2], t, 0.002) for i, t in enumerate(starts)]
    impact = client_impact(records, kill=11.0, recovered=14.0, until=15.0, regions=2, rate=10.0, deadline=1.0)
    assert impact.probe_interval_seconds == pytest.approx(1.7)
    # A starved moment outside the drill's window does not widen its figures' error.
    impact = client_impact(records, kill=14.0, recovered=14.5, until=15.0, regions=2, rate=10.0, deadline=1.0)
    assert impact.probe_interval_seconds == pytest.approx(0.2)


def test_a_region_failing_when_the_prober_stopped_is_said() -> None:
    records = [rec(1, 1.0, 0.01), rec(1, 2.0, 0.5, Outcome.TIMEOUT), rec(2, 1.5, 0.01), rec(2, 2.5, 0.01)]
    # Region 1's last read stalled: its outage outlasted the prober.
    assert still_unavailable(records) == {1}
    impact = client_impact(records, kill=1.8, recovered=None, until=3.0, regions=2, rate=1.0, deadline=0.5)
    assert impact.regions_still_unavailable == 1 and impact.unavailable_regions[0].unavailable_seconds == 0.5
    # A read answered after the failure closes it.
    assert still_unavailable([*records, rec(1, 3.0, 0.01)]) == set()


def test_window_figures_count_stalls_as_errors_with_their_time() -> None:
    f = window_figures([rec(1, 0, 0.001), rec(1, 1, 1.0, Outcome.TIMEOUT)], 0, 2)
    assert f is not None and (f.requests, f.stalled, f.error_ratio) == (2, 1, 0.5)
    assert window_figures([rec(1, 5, 0.001)], 0, 2) is None


def test_the_key_read_lies_inside_its_region() -> None:
    region = RegionInfo(id=1, start_key="7480", end_key="7490")
    key = key_in(region)
    assert key is not None and bytes.fromhex("7480") < key < bytes.fromhex("7490")
    assert key_in(RegionInfo(id=2, start_key="", end_key="01")) is not None
    # An end right after the start leaves no room for the suffix: no key rather than a wrong one.
    assert key_in(RegionInfo(id=3, start_key="74", end_key="7400")) is None


def test_the_slo_is_judged_on_the_clients_figures_when_the_prober_ran() -> None:
    records = [rec(1, 0.0, 0.002), rec(1, 1.0, 0.5, Outcome.TIMEOUT), rec(1, 3.0, 0.002)]
    client = client_impact(records, kill=0.5, recovered=3.5, until=3.5, regions=1, rate=1.0, deadline=0.5)
    # The server saw nothing fail (TiKV counts no failure for a region error): the client did.
    server = Impact(during=ImpactFigures(requestsPerSecond=10.0, errorRatio=0.0, p99Seconds=0.001))
    impact = with_traffic_note(server, client)
    assert impact is not None and impact.note is None
    breaches = slo_breaches(Slo(maxUnavailableSeconds=1.0, maxErrorRatio=0.1), impact)
    assert len(breaches) == 2 and all("TiKV's client" in b for b in breaches), breaches
    assert any("maxUnavailableSeconds 1.0" in b for b in breaches)
    assert slo_breaches(Slo(maxUnavailableSeconds=5.0, maxErrorRatio=0.9, maxP99Seconds=1.0), impact) == []


def test_no_client_traffic_is_said_and_fails_an_slo() -> None:
    silent = with_traffic_note(Impact(during=ImpactFigures(requestsPerSecond=0.0)), None)
    assert silent is not None and silent.note == NO_TRAFFIC
    assert slo_breaches(Slo(maxErrorRatio=0.1), silent) != []


class _Client:
    """A stand-in for the Rust client's coroutine API: region 2's reads never answer."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: bytes) -> Any:
        self.calls += 1
        if key == b"stuck":
            await asyncio.sleep(10)
        return None


async def test_the_prober_records_answers_and_stalls_round_robin() -> None:
    targets = [ProbeTarget(region_id=1, key=b"fine"), ProbeTarget(region_id=2, key=b"stuck")]
    client = _Client()
    prober = Prober(client, targets, rate=50.0, deadline=0.1, warm_up_seconds=0.2)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.7, stop.set)
    records = await prober.run(stop)
    # The warm-up read each region once, unrecorded, and did not wait out the stuck one.
    assert prober.recording_since is not None and client.calls == len(records) + 2
    assert all(r.started >= prober.recording_since for r in records)
    by_region = {r: [x.outcome for x in records if x.region_id == r] for r in (1, 2)}
    assert by_region[1] and set(by_region[1]) == {Outcome.OK}
    assert by_region[2] and set(by_region[2]) == {Outcome.TIMEOUT}
    # Round-robin: a stalled region never holds up the other's reads.
    assert abs(len(by_region[1]) - len(by_region[2])) <= 1, by_region


def test_a_write_prefix_ends_where_its_keys_do() -> None:
    assert prefix_end(b"t") == b"u"
    assert prefix_end(b"ab\xff\xff") == b"ac"
    for key in (b"t", b"t\x00", b"t\xff\xff"):
        assert b"t" <= key < prefix_end(b"t")
    with pytest.raises(ValueError):
        prefix_end(b"\xff")


def test_the_writes_are_shown_apart_with_what_was_put_back() -> None:
    figures = {
        "requests": 9,
        "failed": 0,
        "stalled": 3,
        "errorRatio": 0.33,
        "p50Seconds": 0.01,
        "p99Seconds": 1,
    }
    writes = {"keyPrefix": "t", "regions": 23, "foreignKeys": 1, "during": figures, "removed": 23}
    page = html_report._client_section({"regions": 24, "during": figures, "writes": writes})
    assert 'id="client-writes"' in page and "23 key(s) it wrote removed" in page and "1 key(s)" in page
    # Keys that could not be removed are said, with the reason, also when there are no figures.
    lost = {"keyPrefix": "t", "error": "keys the prober wrote may be left (...): timeout"}
    page = html_report._client_section({"error": "the controller restarted", "writes": lost})
    assert "its keys not removed: keys the prober wrote may be left" in page


async def test_the_prober_says_it_cannot_speak_tls_before_asking_anything() -> None:
    from controller.client_probe.prober import ProberError
    from controller.operator import probing
    from controller.operator.model import ProbeSpec

    class NoPD:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"PD was asked ({name}) for a TLS cluster's prober")

    with pytest.raises(ProberError, match="takes no CA or client certificate"):
        await probing.start(NoPD(), "https://basic-pd.tidb-cluster.svc:2379", ProbeSpec())  # type: ignore[arg-type]
