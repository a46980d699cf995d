"""How the controller reaches a Prometheus or Alertmanager that wants TLS and credentials: what a
Secret (or a mounted directory) must hold, that the credentials really travel (a local HTTPS
server that requires a client certificate and checks the Authorization header), that a refusal
is named without the secret (a missing client certificate is refused by real Prometheus and
Alertmanager in tests/integration/test_tls_monitoring.py: Python's server sends no TLS alert), and that the controller's own credentials never go to a URL a spec
chose."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from controller.alerting.alertmanager import AlertmanagerClient, AlertmanagerError
from controller.httpaccess import PLAIN, ServerAccess, access_from_data, access_from_dir, auth_from_data
from controller.operator.config import ConfiguredAccess, OperatorConfig
from controller.operator.model import DetectionSource
from controller.operator.source_access import controller_access
from controller.prom import PrometheusClient, PrometheusUnauthorized, PrometheusUnavailable
from controller.sandbox.pki import ClusterPki, make_ca, make_cluster_pki
from controller.sandbox.processes import free_port
from controller.tlsclient import TLSConfigError

PASSWORD = "s3cret-pass-word-000"
TOKEN = "tok-abcdefghijklmnop-0000"


def test_credentials_from_a_secret_and_what_is_wrong_with_one() -> None:
    bearer = auth_from_data("secret m/a", {"token": f"{TOKEN}\n".encode()})
    assert bearer is not None and bearer.kind == "bearer"
    basic = auth_from_data("secret m/b", {"username": b"chaosdemo", "password": PASSWORD.encode()})
    assert basic is not None and basic.kind == "basic"
    assert auth_from_data("secret m/c", {"ca.crt": b"x"}) is None
    for data, words in [
        ({"token": b"t", "username": b"u", "password": b"p"}, "both token and username"),
        ({"username": b"u"}, "go together"),
        ({"password": b"p"}, "go together"),
        ({"token": b"  \n"}, "token is empty"),
        ({"token": b"\xff\xfe"}, "not UTF-8"),
    ]:
        with pytest.raises(TLSConfigError, match=words) as refused:
            auth_from_data("secret m/d", data)
        assert refused.value.reason == "AuthSecretInvalid"
    # Names and digests only: neither the token nor the password is in any representation.
    for access in (ServerAccess(auth=bearer), ServerAccess(auth=basic)):
        shown = f"{access!r} {access.describe()} {access.identity}"
        assert TOKEN not in shown and PASSWORD not in shown
    assert ServerAccess(auth=bearer).describe() == "bearer auth from secret m/a"
    other = auth_from_data("secret m/a", {"token": b"another-token-00000000"})
    assert ServerAccess(auth=other).identity != ServerAccess(auth=bearer).identity
    assert PLAIN.identity == "" and PLAIN.describe() == "plain"


def test_a_mounted_directory_holds_tls_and_auth(tmp_path: Path) -> None:
    pki = make_cluster_pki(tmp_path / "pki")
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for key, path in (("ca.crt", pki.ca_cert), ("tls.crt", pki.client_cert), ("tls.key", pki.client_key)):
        (mounted / key).write_bytes(path.read_bytes())
    (mounted / "username").write_text("chaosdemo\n")
    (mounted / "password").write_text(PASSWORD + "\n")
    access = access_from_dir(str(mounted))
    assert access.tls is not None and access.auth is not None and access.auth.kind == "basic"
    assert access.describe() == f"TLS from directory {mounted}, basic auth from directory {mounted}"
    with pytest.raises(TLSConfigError, match="is not a directory"):
        access_from_dir(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TLSConfigError, match="holds none of"):
        access_from_dir(str(tmp_path / "empty"))


def test_the_controllers_credentials_go_to_its_configured_urls_only() -> None:
    basic = auth_from_data("directory /creds", {"username": b"u", "password": b"p"})
    configured = ConfiguredAccess(prometheus=ServerAccess(auth=basic))
    config = OperatorConfig(prometheus_url="https://prometheus.monitoring.svc:9090")

    def chosen(url: str, kind: str = "prometheus") -> ServerAccess:
        return controller_access(config, configured, DetectionSource(type=kind, url=url))  # type: ignore[arg-type]

    assert chosen("https://prometheus.monitoring.svc:9090/").auth is basic, "the same URL, spelled apart"
    assert chosen("https://evil.example:9090") is PLAIN
    assert chosen("https://prometheus.monitoring.svc:9090", "alertmanager") is PLAIN


@dataclass
class Server:
    url: str
    pki: ClusterPki
    seen: list[str]


@pytest.fixture
async def https_server(tmp_path: Path) -> AsyncIterator[Server]:
    """Answers Prometheus' and Alertmanager's check requests only to a client certificate from
    its CA and the right basic-auth or bearer credentials; records each Authorization header."""
    pki = make_cluster_pki(tmp_path / "pki")
    seen: list[str] = []
    good = {f"Basic {base64.b64encode(f'chaosdemo:{PASSWORD}'.encode()).decode()}", f"Bearer {TOKEN}"}

    async def answer(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        seen.append(header)
        if header not in good:
            return web.Response(status=401, text="Unauthorized")
        if request.path == "/api/v1/status/buildinfo":
            return web.json_response({"status": "success", "data": {"version": "2.42.0"}})
        return web.json_response({"cluster": {"status": "ready"}})

    app = web.Application()
    app.router.add_get("/api/v1/status/buildinfo", answer)
    app.router.add_get("/api/v2/status", answer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield Server(f"https://127.0.0.1:{port}", pki, seen)
    finally:
        await runner.cleanup()


def _material(pki: ClusterPki) -> dict[str, bytes]:
    return {
        "ca.crt": pki.ca_cert.read_bytes(),
        "tls.crt": pki.client_cert.read_bytes(),
        "tls.key": pki.client_key.read_bytes(),
    }


async def test_credentials_travel_and_refusals_are_named(https_server: Server, tmp_path: Path) -> None:
    material = _material(https_server.pki)
    basic = access_from_data(
        "secret m/prom", {**material, "username": b"chaosdemo", "password": PASSWORD.encode()}
    )
    bearer = access_from_data("secret m/am", {**material, "token": TOKEN.encode()})
    wrong = access_from_data("secret m/wrong", {**material, "username": b"chaosdemo", "password": b"nope"})
    other_ca, _ = make_ca(tmp_path, "other", "someone-elses-ca")
    stranger = access_from_data(
        "secret m/ca", {**material, "ca.crt": other_ca.read_bytes(), "token": TOKEN.encode()}
    )

    async def prom(access: ServerAccess) -> None:
        client = PrometheusClient(https_server.url, access=access)
        try:
            await client.check()
        finally:
            await client.aclose()

    await prom(basic)
    am = AlertmanagerClient(https_server.url, access=bearer)
    try:
        await am.check()
    finally:
        await am.aclose()
    assert https_server.seen[-2].startswith("Basic ") and https_server.seen[-1] == f"Bearer {TOKEN}"

    with pytest.raises(PrometheusUnauthorized) as refused:
        await prom(wrong)
    assert "refused the request (401)" in str(refused.value) and "secret m/wrong" in str(refused.value)
    assert "nope" not in str(refused.value)
    with pytest.raises(PrometheusUnavailable) as untrusted:
        await prom(stranger)
    assert untrusted.value.tls_problem and "not trusted" in untrusted.value.tls_problem
    am = AlertmanagerClient(https_server.url, access=ServerAccess(tls=basic.tls))
    try:
        with pytest.raises(AlertmanagerError) as anonymous:
            await am.check()
    finally:
        await am.aclose()
    assert anonymous.value.refused and not anonymous.value.tls_problem


def test_secrets_are_named_only_on_server_sources() -> None:
    from pydantic import ValidationError

    ok = DetectionSource.model_validate({"type": "alertmanager", "tlsSecretName": "t", "authSecretName": "a"})
    assert (ok.tls_secret_name, ok.auth_secret_name) == ("t", "a")
    for kind in ("tickets", "alertmanager-notification"):
        for key in ("tlsSecretName", "authSecretName"):
            with pytest.raises(ValidationError, match=f"{key} is for a prometheus or alertmanager source"):
                DetectionSource.model_validate({"type": kind, key: "x"})
