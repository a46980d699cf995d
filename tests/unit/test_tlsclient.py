"""TLS material from a Secret: what a usable one needs, and what a failed handshake is called."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from controller.sandbox.pki import make_cluster_pki
from controller.tlsclient import TLSConfigError, from_secret_data, tls_problem


def test_a_secret_makes_a_client_context_or_says_what_is_wrong(tmp_path: Path) -> None:
    pki = make_cluster_pki(tmp_path / "a")
    other = make_cluster_pki(tmp_path / "b")
    data = {
        "ca.crt": pki.ca_cert.read_bytes(),
        "tls.crt": pki.client_cert.read_bytes(),
        "tls.key": pki.client_key.read_bytes(),
    }
    tls = from_secret_data("secret tikv/pd-client", data)
    assert tls.context.check_hostname and tls.context.verify_mode == ssl.CERT_REQUIRED
    assert tls.identity.startswith("secret tikv/pd-client@")
    again = from_secret_data("secret tikv/pd-client", dict(data))
    assert again.identity == tls.identity, "the same material, the same identity"
    cases = [
        ({}, "no ca.crt"),
        ({"ca.crt": b"not a certificate"}, "not a PEM certificate bundle"),
        ({**data, "tls.key": other.client_key.read_bytes()}, "not a matching PEM pair"),
        ({"ca.crt": data["ca.crt"], "tls.crt": data["tls.crt"]}, "go together"),
    ]
    for secret, words in cases:
        with pytest.raises(TLSConfigError, match=words) as refused:
            from_secret_data("secret tikv/x", secret)
        assert refused.value.reason == "TLSSecretInvalid"
        assert data["tls.key"].decode().splitlines()[1] not in str(refused.value)
    assert list(tmp_path.glob("chaosdemo-tls-*")) == []


def test_what_a_failed_handshake_is_called() -> None:
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"
    wrapped = ConnectionError("connect failed")
    wrapped.__cause__ = untrusted
    assert (
        tls_problem(wrapped)
        == "the server's certificate is not trusted: unable to get local issuer certificate"
    )
    refused = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    assert "refused the handshake" in (tls_problem(refused) or "")
    assert tls_problem(ConnectionRefusedError("refused")) is None
