"""PD's serving TLS in the emulator: PD's [security] section (cacert-path, cert-path, key-path).
Every connection to the client port completes a TLS handshake that requires a client
certificate signed by the CA, as PD with a CA configured does; ALPN offers http/1.1 (the HTTP
API) and h2 (gRPC) on the one port."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerTLS:
    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.load_verify_locations(self.ca)
        context.verify_mode = ssl.CERT_REQUIRED
        # Our preference first: a client offering both (Go's HTTP client: Prometheus scraping
        # /metrics) gets HTTP/1.1, which the HTTP side of the port serves; a gRPC client offers
        # only h2 and gets it. Real PD answers HTTP over h2 as well (its handler splits gRPC
        # from HTTP by content type); here HTTP/2 goes to the gRPC server alone.
        context.set_alpn_protocols(["http/1.1", "h2"])
        return context


class TLSStream:
    """The server side of one TLS connection over asyncio streams, through memory BIOs.

    asyncio's own TLS transport drops what is still unsent when a handshake fails, so a client
    refused for its certificate would see the connection just close. PD (Go's crypto/tls) sends
    the alert first (certificate required, unknown CA), and clients report it; so does this."""

    def __init__(
        self, context: ssl.SSLContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._reader, self._writer = reader, writer
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _fill(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ConnectionError(
                        "the client closed the connection during the TLS handshake"
                    ) from None
                continue
            except ssl.SSLError:
                await self._flush()  # the alert that says why
                raise
            await self._flush()  # TLS 1.3 session tickets
            return

    async def read(self, size: int = 65536) -> bytes:
        """Decrypted bytes; b"" at the end of the stream."""
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def readexactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await self.read(size - len(data))
            if not chunk:
                raise asyncio.IncompleteReadError(data, size)
            data += chunk
        return data

    def write(self, data: bytes) -> None:
        self._tls.write(data)
        self._writer.write(self._outgoing.read())

    async def drain(self) -> None:
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()
