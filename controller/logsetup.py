"""Logging for the long-running commands: one format, and the HTTP clients kept quiet (the
monitor makes dozens of requests a cycle; one line each would bury what matters)."""

from __future__ import annotations

import logging

# kopf.objects logs "Timer succeeded" for every drill twice a second; its warnings still show.
NOISY = ("httpx", "httpcore", "httpx2", "aiohttp.access", "kubernetes_asyncio.client.rest", "kopf.objects")


def configure(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
