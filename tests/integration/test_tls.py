"""PD over mutual TLS, as tidb-operator's TLS clusters run it: the emulator's PD port completes a
real TLS handshake and requires a client certificate signed by the cluster's CA (PD's
[security] section). The controller reaches it with the Secret named in target.tls (ca.crt,
tls.crt, tls.key, the keys tidb-operator's client Secret has), server-name checks on; a wrong CA,
a missing client certificate or a missing Secret is refused at preflight with a reason that
says so, and nothing is touched."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from controller.sandbox.pki import make_ca, make_cluster_pki
from tests.support.drills import DrillEnv, PodHistory, opt_in

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}


def _secret(env: DrillEnv, name: str, **files: Path) -> None:
    args = [f"--from-file={key}={path}" for key, path in files.items()]
    env.kubectl("create", "secret", "generic", name, "-n", env.ns, *args)


def test_drills_reach_pd_over_mutual_tls_and_a_wrong_ca_is_refused(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(tls=True, with_prometheus=False)
    pki = cluster.pki
    assert pki is not None and cluster.pd_url.startswith("https://")
    # The port itself: a client with the CA but no certificate is refused by the server.
    anonymous = ssl.create_default_context(cafile=str(pki.ca_cert))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"{cluster.pd_url}/pd/api/v1/stores", timeout=5, context=anonymous).read()

    other_ca, _ = make_ca(tmp_path, "other-ca", "someone-elses-ca")
    stranger = make_cluster_pki(tmp_path / "stranger")  # a valid pair from another cluster's CA
    env = DrillEnv(cluster=cluster, workdir=tmp_path / "drill")
    env.workdir.mkdir()
    opt_in(cluster)
    _secret(
        env, "pd-client", **{"ca.crt": pki.ca_cert, "tls.crt": pki.client_cert, "tls.key": pki.client_key}
    )
    _secret(env, "wrong-ca", **{"ca.crt": other_ca, "tls.crt": pki.client_cert, "tls.key": pki.client_key})
    _secret(env, "ca-only", **{"ca.crt": pki.ca_cert})
    _secret(
        env,
        "foreign-client",
        **{"ca.crt": pki.ca_cert, "tls.crt": stranger.client_cert, "tls.key": stranger.client_key},
    )
    # Without the controller's own PD credentials (CHAOSDEMO_PD_CREDENTIALS_DIR, which
    # test_tls_monitoring uses): each drill reaches PD with its target.tls Secret or nothing.
    env.start_controller(CHAOSDEMO_PD_CREDENTIALS_DIR="")
    try:
        with PodHistory(cluster) as history:
            outcomes = {}
            for name, tls in [
                ("right", {"secretName": "pd-client"}),
                ("wrong-ca", {"secretName": "wrong-ca"}),
                ("no-client-cert", {"secretName": "ca-only"}),
                ("foreign-client", {"secretName": "foreign-client"}),
                ("no-secret", {"secretName": "not-there"}),
                ("no-tls", None),
            ]:
                target = {"pod": "tikv-1", **({"tls": tls} if tls else {})}
                env.drill(
                    name, {"target": target, "safety": {"dryRun": True}, "diagnosis": {"enabled": False}}
                )
                outcomes[name] = env.wait_phase(name, TERMINAL, timeout=60)
        log = env.controller.log_tail(2000) if env.controller else ""
        events = env.kubectl("get", "events", "-n", env.ns, "-o", "json").stdout
    finally:
        env.stop()

    right = outcomes["right"]
    assert (right["phase"], right["verdict"]) == ("Completed", "Pass"), right
    assert right["victim"]["pod"] == "tikv-1" and right["victim"]["storeId"] >= 1, right
    assert right["run"]["tlsSecret"] == f"{env.ns}/pd-client"

    def refused(name: str, reason: str, words: str) -> None:
        st = outcomes[name]
        assert (st["phase"], st["verdict"], st["reason"]) == ("Failed", "Error", reason), st
        assert words in st["message"], st["message"]
        assert "injectingAt" not in st["timeline"], st["timeline"]

    refused("wrong-ca", "TLSHandshakeFailed", "the server's certificate is not trusted")
    refused("no-tls", "TLSHandshakeFailed", "the server's certificate is not trusted")
    refused("no-client-cert", "TLSHandshakeFailed", "refused the handshake")
    refused("foreign-client", "TLSHandshakeFailed", "refused the handshake")
    refused("no-secret", "TLSSecretNotFound", f"secret {env.ns}/not-there")
    assert history.replaced() == {}, "nothing is touched by a dry run or a refusal"
    key = pki.client_key.read_text()
    body = key.splitlines()[1]
    for where, text in (("log", log), ("events", events), ("status", str(outcomes))):
        assert body not in text, f"client key material in the {where}"
