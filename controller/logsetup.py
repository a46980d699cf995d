"""Logging for the long-running commands: one format, and the HTTP clients kept quiet (the
monitor makes dozens of requests a cycle; one line each would bury what matters)."""

from __future__ import annotations

import logging

from controller.redaction import redact

# kopf.objects logs "Timer succeeded" for every drill twice a second; its warnings still show.
NOISY = ("httpx", "httpcore", "httpx2", "aiohttp.access", "kubernetes_asyncio.client.rest", "kopf.objects")


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Every log line, tracebacks included, goes through redaction: an exception can quote a URL
    with credentials or a header, and a log line is as public as an Event."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(FORMAT))
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
