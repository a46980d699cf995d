"""Logging for the long-running commands: one format, and the HTTP clients kept quiet (the
monitor makes dozens of requests a cycle; one line each would bury what matters)."""

from __future__ import annotations

import logging

NOISY = ("httpx", "httpcore", "httpx2", "aiohttp.access", "kubernetes_asyncio.client.rest")


def configure(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
