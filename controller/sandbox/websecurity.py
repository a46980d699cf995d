"""Prometheus and Alertmanager served as a locked-down cluster serves them: HTTPS with a client
certificate required (signed by the cluster's CA) and basic auth, through their real web
configuration file (``--web.config.file``: ``tls_server_config`` and ``basic_auth_users``).

The same material, written as a Secret's keys into a directory, is what the controller and the
monitor are given (``CHAOSDEMO_PROMETHEUS_CREDENTIALS_DIR``)."""

from __future__ import annotations

import base64
import secrets
import shutil
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.sandbox.pki import ClusterPki

USERNAME = "chaosdemo"


@dataclass(frozen=True)
class WebSecurity:
    pki: ClusterPki
    password: str = field(repr=False)
    username: str = USERNAME

    @classmethod
    def create(cls, pki: ClusterPki) -> WebSecurity:
        return cls(pki=pki, password=secrets.token_urlsafe(18))

    def web_config(self, path: Path) -> Path:
        """The server side: our server certificate, client certificates from the cluster's CA
        required, one basic-auth user (bcrypt, as Prometheus' exporter-toolkit demands)."""
        try:
            import bcrypt
        except ImportError as exc:  # a test extra: `pip install -e '.[test]'`
            raise RuntimeError(
                "the sandbox's HTTPS monitoring needs the bcrypt package (test extra)"
            ) from exc
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        config = {
            "tls_server_config": {
                "cert_file": str(self.pki.server_cert),
                "key_file": str(self.pki.server_key),
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": str(self.pki.ca_cert),
            },
            "basic_auth_users": {self.username: hashed},
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def client_side(self, password_file: Path) -> dict[str, Any]:
        """How Prometheus reaches a server configured so (an Alertmanager, in its ``alerting``)."""
        password_file.write_text(self.password)
        password_file.chmod(0o600)
        return {
            "scheme": "https",
            "tls_config": self.tls_config(),
            "basic_auth": {"username": self.username, "password_file": str(password_file)},
        }

    def tls_config(self) -> dict[str, str]:
        return {
            "ca_file": str(self.pki.ca_cert),
            "cert_file": str(self.pki.client_cert),
            "key_file": str(self.pki.client_key),
        }

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(self.pki.client_cert, self.pki.client_key)
        return context

    def authorization(self) -> str:
        pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {pair}"

    def open(self, url: str, timeout: float = 5) -> Any:
        request = urllib.request.Request(url, headers={"Authorization": self.authorization()})
        return urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context())

    def credentials_dir(self, directory: Path, *, with_auth: bool = True) -> Path:
        """A Secret's keys as files (ca.crt, tls.crt, tls.key, username, password): what a
        mounted Secret gives the controller's pod."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        shutil.copyfile(self.pki.ca_cert, directory / "ca.crt")
        shutil.copyfile(self.pki.client_cert, directory / "tls.crt")
        shutil.copyfile(self.pki.client_key, directory / "tls.key")
        if with_auth:
            (directory / "username").write_text(self.username)
            (directory / "password").write_text(self.password)
        return directory
