"""The controller's Alertmanager webhook receiver: ``POST /alertmanager``.

Alertmanager routes to it like to any webhook (``webhook_configs``, bearer ``authorization``);
each accepted notification is logged with its arrival time, which the drills' notification source
reads. Guarded as anything reachable over the network must be: a bearer token compared in
constant time, a request rate limit (token bucket, before authentication, so guessing is slow
too), a bounded body (aiohttp answers 413 beyond it) and a bounded log.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from controller.alerting.notifications import BadPayload, Notification, NotificationLog, parse_payload

log = logging.getLogger(__name__)

PATH = "/alertmanager"
# Alertmanager's notifications carry at most a few hundred alerts; a megabyte is plenty.
MAX_BODY_BYTES = 1 << 20


class RateLimiter:
    """A token bucket: ``rate`` requests a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens, self._at = float(burst), clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass(frozen=True)
class ReceiverSettings:
    host: str
    port: int
    token: str = field(repr=False)  # never printed
    max_body_bytes: int = MAX_BODY_BYTES
    rate: float = 20.0
    burst: int = 40

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ValueError("the webhook receiver needs a bearer token of at least 16 characters")


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def build_app(
    notifications: NotificationLog,
    settings: ReceiverSettings,
    clock: Callable[[], float] = time.time,
    limiter_clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """``clock`` dates each notification (wall time); ``limiter_clock`` paces the rate limit."""
    limiter = RateLimiter(settings.rate, settings.burst, limiter_clock)

    async def receive(request: web.Request) -> web.Response:
        received_at = clock()  # before the body is read: the page arrived now
        if not limiter.allow():
            return web.json_response({"error": "rate limited"}, status=429, headers={"Retry-After": "1"})
        if not _authorized(request, settings.token):
            log.warning("webhook: refused a request from %s without the bearer token", request.remote)
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            payload = parse_payload(await request.read())
        except BadPayload as exc:
            return web.json_response({"error": str(exc)}, status=400)
        notifications.add(Notification(received_at, payload.receiver, tuple(payload.alerts)))
        return web.json_response({"accepted": len(payload.alerts)})

    app = web.Application(client_max_size=settings.max_body_bytes)
    app.router.add_post(PATH, receive)
    return app


async def start_receiver(notifications: NotificationLog, settings: ReceiverSettings) -> web.AppRunner:
    runner = web.AppRunner(build_app(notifications, settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    log.info("webhook receiver listening on %s:%d%s", settings.host, settings.port, PATH)
    return runner
