"""How the controller reaches an HTTPS server that wants more than a URL (Prometheus,
Alertmanager): the TLS it trusts and presents, and a bearer token or basic-auth credentials.

The material comes from a Kubernetes Secret (``ca.crt``, ``tls.crt``, ``tls.key``; ``token``, or
``username`` and ``password``) or from a directory holding those keys as files (a Secret, or
several in one projected volume, mounted into the controller's pod). Credentials are kept only in
the httpx client they are handed to: ``repr`` and every message name where they came from,
never what they are.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from controller.tlsclient import CA_KEY, CERT_KEY, KEY_KEY, ClientTLS, TLSConfigError, client_tls, tls_problem

TOKEN_KEY, USERNAME_KEY, PASSWORD_KEY = "token", "username", "password"
TLS_KEYS = (CA_KEY, CERT_KEY, KEY_KEY)
AUTH_KEYS = (TOKEN_KEY, USERNAME_KEY, PASSWORD_KEY)


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


@dataclass(frozen=True)
class ServerAuth:
    """A bearer token or basic-auth credentials; ``kind`` and ``source`` are safe to show."""

    kind: str  # "bearer" or "basic"
    source: str
    _auth: httpx.Auth = field(repr=False, compare=False)
    _digest: str = field(repr=False)

    def httpx_auth(self) -> httpx.Auth:
        return self._auth


def auth_from_data(source: str, data: Mapping[str, bytes]) -> ServerAuth | None:
    """The credentials in ``data`` (None: it holds none). Both kinds at once is ambiguous."""
    token = _text(source, data, TOKEN_KEY)
    username, password = _text(source, data, USERNAME_KEY), _text(source, data, PASSWORD_KEY)
    if token is not None and (username is not None or password is not None):
        raise TLSConfigError(
            "AuthSecretInvalid",
            f"{source}: holds both {TOKEN_KEY} and {USERNAME_KEY}/{PASSWORD_KEY}: keep the one the server takes",
        )
    if token is not None:
        if not token:
            raise TLSConfigError("AuthSecretInvalid", f"{source}: {TOKEN_KEY} is empty")
        return ServerAuth("bearer", source, _BearerAuth(token), _digest(token))
    if username is None and password is None:
        return None
    if not username or password is None:
        raise TLSConfigError("AuthSecretInvalid", f"{source}: {USERNAME_KEY} and {PASSWORD_KEY} go together")
    return ServerAuth(
        "basic", source, httpx.BasicAuth(username, password), _digest(f"{username}\0{password}")
    )


def _text(source: str, data: Mapping[str, bytes], key: str) -> str | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        # A mounted file often ends with a newline the credential never had.
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise TLSConfigError("AuthSecretInvalid", f"{source}: {key} is not UTF-8 text") from exc


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ServerAccess:
    """TLS and credentials for one server; ``identity`` tells two apart without showing either
    (a rotated Secret gives a new identity, so new clients)."""

    tls: ClientTLS | None = None
    auth: ServerAuth | None = None

    @property
    def identity(self) -> str:
        parts = [self.tls.identity if self.tls else "", self.auth._digest if self.auth else ""]
        return "|".join(parts) if any(parts) else ""

    def describe(self) -> str:
        """What is used, in words: "TLS from secret tikv/x, basic auth from secret tikv/y"."""
        said = []
        if self.tls is not None:
            said.append(f"TLS from {self.tls.source}")
        if self.auth is not None:
            said.append(f"{self.auth.kind} auth from {self.auth.source}")
        return ", ".join(said) or "plain"

    def client(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=timeout,
            verify=self.tls.context if self.tls else True,
            auth=self.auth.httpx_auth() if self.auth else None,
        )

    def merged(self, other: ServerAccess) -> ServerAccess:
        """``other``'s parts where it has them, this one's elsewhere (a TLS Secret and an auth
        Secret named apart)."""
        return ServerAccess(tls=other.tls or self.tls, auth=other.auth or self.auth)


PLAIN = ServerAccess()


def tls_from_data(source: str, data: Mapping[str, bytes]) -> ClientTLS | None:
    """The TLS material in ``data`` (None: no ``ca.crt``, and no client certificate either)."""
    if not any(key in data for key in TLS_KEYS):
        return None
    return client_tls(source, data.get(CA_KEY, b""), data.get(CERT_KEY), data.get(KEY_KEY))


def access_from_data(source: str, data: Mapping[str, bytes]) -> ServerAccess:
    return ServerAccess(tls=tls_from_data(source, data), auth=auth_from_data(source, data))


def access_from_dir(directory: str) -> ServerAccess:
    """The access held by a directory of files named like a Secret's keys (a mounted Secret, or
    a projected volume of a TLS Secret and an auth Secret). Blocking: call it off the loop."""
    root = Path(directory)
    if not root.is_dir():
        raise TLSConfigError("CredentialsNotFound", f"{directory} is not a directory")
    data = {key: (root / key).read_bytes() for key in (*TLS_KEYS, *AUTH_KEYS) if (root / key).is_file()}
    if not data:
        raise TLSConfigError(
            "CredentialsNotFound",
            f"{directory} holds none of {', '.join((*TLS_KEYS, *AUTH_KEYS))}",
        )
    return access_from_data(f"directory {directory}", data)


@dataclass(frozen=True)
class Unanswered:
    """Why a server gave no usable answer: unreachable, a failed handshake (``tls_problem``), or
    credentials refused (``refused``: 401 or 403)."""

    message: str
    tls_problem: str | None = None
    refused: bool = False


async def get(
    client: httpx.AsyncClient, server: str, url: str, params: Mapping[str, Any], access: ServerAccess
) -> httpx.Response | Unanswered:
    """GET ``url`` from ``server`` ("Prometheus at ..."), a failure said in words."""
    try:
        response = await client.get(url, params=dict(params))
    # A refused client certificate may surface as ssl.SSLError itself, not wrapped by httpx.
    except (httpx.TransportError, ssl.SSLError) as exc:
        problem = tls_problem(exc)
        return Unanswered(f"{server}: {problem}" if problem else f"{server} is unreachable: {exc!r}", problem)
    if response.status_code in (401, 403):
        return Unanswered(
            f"{server} refused the request ({response.status_code}) with {access.describe()}: "
            "its credentials are missing or wrong",
            refused=True,
        )
    return response
