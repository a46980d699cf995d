"""Certificates for the local control plane, made with the `openssl` command.

One CA signs the API server's serving certificate and an admin client certificate
(group system:masters). A separate RSA key pair signs service-account tokens.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _openssl(*args: str) -> None:
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    except FileNotFoundError as exc:
        raise RuntimeError("the `openssl` command is needed to make the sandbox's certificates") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"openssl {args[0]} failed: {exc.stderr.decode(errors='replace')}") from exc


def _sign(d: Path, name: str, subject: str, ca_cert: Path, ca_key: Path, ext: str) -> tuple[Path, Path]:
    key, csr, crt, extfile = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt", d / f"{name}.ext"
    extfile.write_text(ext)
    _openssl(
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-subj",
        subject,
        "-out",
        str(csr),
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        str(extfile),
        "-out",
        str(crt),
    )
    return crt, key


def make_ca(d: Path, name: str, common_name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    ca_key, ca_cert = d / f"{name}.key", d / f"{name}.crt"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-days",
        "3650",
        "-subj",
        f"/CN={common_name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    return ca_cert, ca_key


SERVER_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


@dataclass(frozen=True)
class ClusterPki:
    """A TiKV cluster's TLS, as tidb-operator or cert-manager issues it: one CA, PD's serving
    certificate, and a client certificate (what ``<cluster>-cluster-client-secret`` holds)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_cluster_pki(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> ClusterPki:
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(d, "cluster-ca", "chaosdemo-tikv-cluster-ca")
    sans = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    server_cert, server_key = _sign(
        d, "pd", "/CN=pd", ca_cert, ca_key, SERVER_EXT + f"subjectAltName={sans}\n"
    )
    client_cert, client_key = _sign(d, "client", "/CN=chaosdemo", ca_cert, ca_key, CLIENT_EXT)
    return ClusterPki(ca_cert, server_cert, server_key, client_cert, client_key)


def make_pki(directory: Path, service_ip: str = "10.0.0.1") -> Pki:
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(d, "ca", "chaosdemo-sandbox-ca")
    server_cert, server_key = _sign(
        d,
        "apiserver",
        "/CN=kube-apiserver",
        ca_cert,
        ca_key,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:127.0.0.1,IP:{service_ip},DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
    )
    admin_cert, admin_key = _sign(
        d,
        "admin",
        "/O=system:masters/CN=chaosdemo-admin",
        ca_cert,
        ca_key,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    sa_key, sa_pub = d / "sa.key", d / "sa.pub"
    _openssl("genrsa", "-out", str(sa_key), "2048")
    _openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    return Pki(ca_cert, ca_key, server_cert, server_key, admin_cert, admin_key, sa_key, sa_pub)
