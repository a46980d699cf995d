"""The Alertmanager webhook receiver over real HTTP (aiohttp's test server): authenticated,
rate-limited, bounded, and what a drill's notification source reads from what it took in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.alerting.matching import ClusterIdentity, VictimIdentity
from controller.alerting.notifications import NotificationLog
from controller.alerting.watch import Scope, look_notifications
from controller.alerting.webhook import PATH, RateLimiter, ReceiverSettings, build_app
from controller.timefmt import format_rfc3339

TOKEN = "a-webhook-token-of-enough-length"
KILL = 1_000.0
VICTIM = VictimIdentity("tikv-1", "tikv", 2, "tikv-1.tikv-peer.tikv.svc:20160", "127.0.11.2:20180")
SCOPE = Scope(victims=[VICTIM], cluster=ClusterIdentity(namespace="tikv"))


def _payload(*alerts: dict[str, object]) -> dict[str, object]:
    return {"version": "4", "receiver": "drills", "status": "firing", "alerts": list(alerts)}


def _alert(name: str, starts: float, status: str = "firing", **labels: str) -> dict[str, object]:
    return {"status": status, "labels": {"alertname": name, **labels}, "startsAt": format_rfc3339(starts)}


class Clock:
    def __init__(self) -> None:
        self.now = KILL

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[TestClient, NotificationLog, Clock]]:  # type: ignore[type-arg]
    log, clock = NotificationLog(), Clock()
    # The limiter on the test's clock too: its bucket refills only when the test moves time
    # (on the real clock a slow machine refilled it between requests).
    settings = ReceiverSettings("127.0.0.1", 0, TOKEN, max_body_bytes=4096, rate=1, burst=5)
    app = build_app(log, settings, clock, limiter_clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client, log, clock


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_notification_is_logged_with_its_arrival_time(receiver) -> None:  # type: ignore[no-untyped-def]
    client, log, clock = receiver
    clock.now = KILL + 12.5
    restart = _alert("TiKV_node_restart", KILL + 9.0, job="tikv", instance="127.0.11.2:20180")
    response = await client.post(PATH, json=_payload(restart), headers=AUTH)
    assert response.status == 200 and (await response.json()) == {"accepted": 1}
    [notification] = list(log.since(KILL))
    assert notification.received_at == KILL + 12.5 and notification.alerts[0].name == "TiKV_node_restart"


async def test_refused_without_the_token_or_with_a_bad_body(receiver) -> None:  # type: ignore[no-untyped-def]
    client, log, _ = receiver
    payload = _payload(_alert("X", KILL + 1))
    assert (await client.post(PATH, json=payload)).status == 401
    wrong = await client.post(PATH, json=payload, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.post(PATH, data=b"{not json", headers=AUTH)).status == 400
    big = json.dumps(_payload(*[_alert("X" * 50, KILL + 1) for _ in range(100)]))
    assert (await client.post(PATH, data=big, headers=AUTH)).status == 413
    assert len(log) == 0, "nothing refused was logged"


async def test_requests_beyond_the_rate_are_refused(receiver) -> None:  # type: ignore[no-untyped-def]
    client, _, clock = receiver
    statuses = [(await client.post(PATH, json=_payload(), headers=AUTH)).status for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3
    clock.now += 1.0  # one token back at 1 a second
    statuses = [(await client.post(PATH, json=_payload(), headers=AUTH)).status for _ in range(2)]
    assert statuses == [200, 429]


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=2, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(3)] == [True, True, False]
    now[0] = 0.5  # one token back
    assert [limiter.allow(), limiter.allow()] == [True, False]


def test_a_short_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        ReceiverSettings("127.0.0.1", 0, "short")
    assert TOKEN not in repr(ReceiverSettings("127.0.0.1", 0, TOKEN))


async def test_the_notification_source_times_the_page_and_ignores_what_is_not_the_drills(receiver) -> None:  # type: ignore[no-untyped-def]
    client, log, clock = receiver
    old = _alert("TiKV_node_restart", KILL - 30, job="tikv", instance="127.0.11.2:20180")  # before the kill
    disk = _alert("NodeFilesystemAlmostFull", KILL + 2, job="node-exporter", instance="10.0.0.7:9100")
    resolved = _alert(
        "TiKV_node_restart", KILL + 3, status="resolved", job="tikv", instance="127.0.11.2:20180"
    )
    clock.now = KILL + 4
    await client.post(PATH, json=_payload(old, disk, resolved), headers=AUTH)
    look = look_notifications(log, SCOPE, KILL)
    assert look.found is None and [i.name for i in look.ignored] == ["NodeFilesystemAlmostFull"]
    clock.now = KILL + 14
    fresh = _alert("TiKV_node_restart", KILL + 9, job="tikv", instance="127.0.11.2:20180")
    await client.post(PATH, json=_payload(fresh), headers=AUTH)
    look = look_notifications(log, SCOPE, KILL)
    assert look.found is not None and look.tie is not None
    assert (look.found.firing_at, look.found.started_at, look.tie.victim) == (KILL + 14, KILL + 9, "tikv-1")
