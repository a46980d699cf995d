"""HTTP clients kept per address, bounded: a spec may name any number of addresses (within the
admin's allow-lists), and each client holds a connection pool until it is closed."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class ClientCache(Generic[C]):
    """One client per key, built only when missing; the least recently used is closed when
    more than ``limit`` are kept."""

    def __init__(self, factory: Callable[[str], C], limit: int = 32) -> None:
        self._factory = factory
        self._limit = limit
        self._clients: OrderedDict[str, C] = OrderedDict()
        self._closing: set[asyncio.Future[None]] = set()

    def get(self, key: str) -> C:
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._factory(key)
            while len(self._clients) > self._limit:
                _, evicted = self._clients.popitem(last=False)
                closing = asyncio.ensure_future(evicted.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        else:
            self._clients.move_to_end(key)
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
