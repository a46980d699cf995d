"""Where the emulator's gRPC is served.

- Each live store has a gRPC server at its own loopback address, port 20160 (its status server
  is at the same address, port 20180), opened when its pod starts serving and closed when it
  stops: a client dialing a stopped store is refused.
- PD serves gRPC and its HTTP API on one port, as a real PD does (cmux): ``PortMux`` looks at
  a connection's first bytes (HTTP/2's preface for gRPC) and hands it to the one or the other.
- A hosts file maps the names stores advertise (``tikv-1.tikv-peer.tikv.svc``) to those
  addresses, for the sandbox's stand-in for cluster DNS (tools/sandbox_dns.c).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path

import grpc

from controller.emulator import kvproto
from controller.emulator.grpc_pd import PDService
from controller.emulator.grpc_tikv import RawData, TikvService
from controller.emulator.model import EmulatedCluster, Store
from controller.emulator.tls import TLSStream

log = logging.getLogger(__name__)
TIKV_PORT = 20160
HTTP2_PREFACE_START = b"PRI"
# One server per address (a stopped store's port must refuse), and pings as often as Go's
# client sends them (grpc-go keepalive: 10 s, even without calls), as TiKV allows.
SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]


def _servicer(ours: type, generated: type) -> type:
    """Our methods over the generated base, whose every other method answers UNIMPLEMENTED, as
    a real server does for what it does not serve (the generated classes exist only at run
    time, after set-up, so the subclass is made here)."""
    return type(ours.__name__, (ours, generated), {})


def grpc_address(store: Store) -> str:
    """The store's gRPC address: its status server's host, TiKV's gRPC port."""
    host = store.status_address.rsplit(":", 1)[0]
    return f"{host}:{TIKV_PORT}"


class StoreServers:
    def __init__(
        self,
        cluster: EmulatedCluster,
        data: RawData,
        hosts_file: Path | None,
        fixed_hosts: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.data = data
        self.hosts_file = hosts_file
        # Names that always resolve (PD's service names -> the address PD listens on).
        self.fixed_hosts = dict(fixed_hosts or {})
        self._servers: dict[str, grpc.aio.Server] = {}

    async def open(self, store: Store) -> None:
        if store.pod in self._servers:
            return
        server = grpc.aio.server(options=SERVER_OPTIONS)
        grpc_module = kvproto.tikvpb_grpc()
        service = _servicer(TikvService, grpc_module.TikvServicer)(self.cluster, store.pod, self.data)
        grpc_module.add_TikvServicer_to_server(service, server)
        server.add_insecure_port(grpc_address(store))
        await server.start()
        self._servers[store.pod] = server
        self.write_hosts()

    async def close(self, pod: str) -> None:
        server = self._servers.pop(pod, None)
        if server is not None:
            await server.stop(grace=None)

    async def close_all(self) -> None:
        for pod in list(self._servers):
            await self.close(pod)

    def write_hosts(self) -> None:
        """Every store's advertised host name and the loopback address it is served at, and the
        fixed names (PD's service)."""
        if self.hosts_file is None:
            return
        lines = [
            f"{s.address.rsplit(':', 1)[0]} {grpc_address(s).rsplit(':', 1)[0]}"
            for s in sorted(self.cluster.stores.values(), key=lambda s: s.id)
        ]
        lines += [f"{name} {address}" for name, address in self.fixed_hosts.items()]
        tmp = self.hosts_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.hosts_file)  # atomic: a lookup never reads half a file


class PortMux:
    """One listening port for PD's gRPC and HTTP API, split by each connection's first bytes."""

    def __init__(
        self, host: str, port: int, grpc_port: int, http_port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port = host, port
        self.grpc_port, self.http_port = grpc_port, http_port
        # With TLS, the handshake (and the client certificate check) happens here; the split by
        # first bytes reads the decrypted stream, so gRPC and HTTP share the port as before.
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        front: asyncio.StreamReader | TLSStream = reader
        front_out: asyncio.StreamWriter | TLSStream = writer
        try:
            if self.ssl_context is not None:
                front = front_out = TLSStream(self.ssl_context, reader, writer)
                await front.handshake()
            first = await front.readexactly(len(HTTP2_PREFACE_START))
            port = self.grpc_port if first == HTTP2_PREFACE_START else self.http_port
            back_reader, back_writer = await asyncio.open_connection("127.0.0.1", port)
            back_writer.write(first)
            await asyncio.gather(_pipe(front, back_writer), _pipe(back_reader, front_out))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()


async def _pipe(reader: asyncio.StreamReader | TLSStream, writer: asyncio.StreamWriter | TLSStream) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def start_pd_grpc(cluster: EmulatedCluster, pd_url: str) -> tuple[grpc.aio.Server, int]:
    """PD's gRPC service on a loopback port of its own, behind the PortMux."""
    server = grpc.aio.server(options=SERVER_OPTIONS[1:])
    grpc_module = kvproto.pdpb_grpc()
    grpc_module.add_PDServicer_to_server(
        _servicer(PDService, grpc_module.PDServicer)(cluster, pd_url), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
