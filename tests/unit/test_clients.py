"""Clients kept per address: built once, bounded, the evicted ones closed."""

from __future__ import annotations

from controller.operator.clients import ClientCache
from controller.operator.sources import AlertingClients


class Client:
    built: list[str] = []

    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = False
        Client.built.append(url)

    async def aclose(self) -> None:
        self.closed = True


async def test_a_client_is_built_once_per_address_and_the_least_used_is_closed() -> None:
    Client.built = []
    cache: ClientCache[Client] = ClientCache(Client, limit=2)
    first = cache.get("http://a")
    assert cache.get("http://a") is first and Client.built == ["http://a"]
    second = cache.get("http://b")
    cache.get("http://a")  # a is used again: b is now the least recently used
    cache.get("http://c")
    await cache.aclose()  # also waits for the evicted client's close
    assert Client.built == ["http://a", "http://b", "http://c"] and second.closed and first.closed


async def test_alerting_clients_do_not_build_a_client_on_every_look() -> None:
    clients = AlertingClients()
    assert clients.prom("http://prom:9090") is clients.prom("http://prom:9090")
    assert clients.am("http://am:9093") is clients.am("http://am:9093")
    assert (len(clients.prometheus), len(clients.alertmanager)) == (1, 1)
    await clients.aclose()
