"""TLS towards PD (and the servers a drill reads): a CA bundle, a client certificate and key,
server-name checks on. The material comes from a Kubernetes Secret (``ca.crt``, ``tls.crt``,
``tls.key``: the keys tidb-operator's client Secrets and cert-manager use) or from files.

``ssl`` loads a certificate chain only from files: the Secret's certificate and key are written
to a private directory, loaded, and removed at once; nothing stays on disk and nothing is logged.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"


class TLSConfigError(ValueError):
    """The TLS material cannot be used: missing keys, not PEM, a key that does not match."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClientTLS:
    """A ready client context and a name for it (where it came from, and a digest of its
    material, so a rotated Secret makes new clients)."""

    source: str
    identity: str
    context: ssl.SSLContext = field(repr=False, compare=False)


def client_tls(source: str, ca: bytes, cert: bytes | None, key: bytes | None) -> ClientTLS:
    """A client context trusting only ``ca``, presenting ``cert``/``key`` when given."""
    if not ca.strip():
        raise TLSConfigError("TLSSecretInvalid", f"{source}: no {CA_KEY} (the CA that signs the server)")
    if (cert is None) != (key is None):
        raise TLSConfigError("TLSSecretInvalid", f"{source}: {CERT_KEY} and {KEY_KEY} go together")
    try:
        context = ssl.create_default_context(cadata=ca.decode("ascii", errors="strict"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
        raise TLSConfigError(
            "TLSSecretInvalid", f"{source}: {CA_KEY} is not a PEM certificate bundle"
        ) from exc
    if cert is not None and key is not None:
        _load_chain(context, source, cert, key)
    digest = hashlib.sha256(b"\0".join([ca, cert or b"", key or b""])).hexdigest()[:16]
    return ClientTLS(source=source, identity=f"{source}@{digest}", context=context)


def _load_chain(context: ssl.SSLContext, source: str, cert: bytes, key: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="chaosdemo-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise TLSConfigError(
                "TLSSecretInvalid", f"{source}: {CERT_KEY} and {KEY_KEY} are not a matching PEM pair"
            ) from exc


def from_secret_data(source: str, data: dict[str, bytes]) -> ClientTLS:
    return client_tls(source, data.get(CA_KEY, b""), data.get(CERT_KEY), data.get(KEY_KEY))


def from_files(ca_file: str, cert_file: str = "", key_file: str = "") -> ClientTLS:
    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return client_tls(f"files {ca_file}", read(ca_file) or b"", read(cert_file), read(key_file))


def tls_problem(exc: BaseException) -> str | None:
    """What went wrong in a TLS handshake, in words, when ``exc`` (or what caused it) was one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"the server's certificate is not trusted: {seen.verify_message or _reason(seen)}"
        if isinstance(seen, ssl.SSLError):
            text = str(seen)
            # The alert Go's crypto/tls sends for a missing or untrusted client certificate:
            # certificate required (TLS 1.3), bad certificate (TLS 1.2), unknown CA.
            refusals = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "HANDSHAKE_FAILURE", "UNKNOWN_CA")
            if any(alert in text for alert in refusals):
                return (
                    "the server refused the handshake (a client certificate it accepts is required): "
                    + _reason(seen)
                )
            return f"the TLS handshake failed: {_reason(seen)}"
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason code when ssl set one (it does for a real handshake), else the text."""
    return str(getattr(exc, "reason", None) or exc)
