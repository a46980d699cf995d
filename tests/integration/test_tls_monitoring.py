"""A cluster locked down the way a TLS tidb-operator cluster and its monitoring are: PD serves
mutual TLS; the real Prometheus and the real Alertmanager serve HTTPS through their own web
configuration (a client certificate from the cluster's CA required, basic auth), Prometheus
scrapes PD with a client certificate and sends to Alertmanager the same way.

The controller and the monitor reach PD, Prometheus and Alertmanager with credentials mounted
as directories (CHAOSDEMO_*_CREDENTIALS_DIR); one source names its own Secrets. A drill is
timed through all of them; a wrong CA, a missing client certificate, a wrong password and a
missing Secret each stop a drill at preflight with the source named and nothing touched; the
controller's credentials are not sent to a URL the spec chose; no secret reaches status, Events
or logs."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from controller.sandbox.pki import make_ca
from controller.timefmt import parse_rfc3339
from tests.support.drills import DrillEnv, PodHistory, started_drill_env

pytestmark = pytest.mark.integration
TERMINAL = {"Completed", "Failed", "Aborted"}
RESTART = "TiKV_node_restart"
TIME_SCALE = 0.2
SCRAPE = EVALUATION = 0.5


def _secret(env: DrillEnv, name: str, **files: Path) -> None:
    """Create the Secret, or replace its data (as a rotation does)."""
    args = [f"--from-file={key}={path}" for key, path in files.items()]
    manifest = env.kubectl(
        "create", "secret", "generic", name, "-n", env.ns, *args, "--dry-run=client", "-o", "json"
    ).stdout
    env.kubectl("apply", "-f", "-", input=manifest)


def _source(st: dict, name: str) -> dict:
    return next(s for s in st["detection"]["sources"] if s["name"] == name)


def test_drills_through_https_monitoring_with_client_certificates_and_basic_auth(
    tikv_cluster_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    cluster = tikv_cluster_factory(
        tls=True,
        time_scale=TIME_SCALE,
        with_alerting=True,
        scrape_interval=SCRAPE,
        evaluation_interval=EVALUATION,
    )
    prom, am, web, pki = cluster.prometheus, cluster.alertmanager, cluster.web, cluster.pki
    assert prom is not None and am is not None and web is not None and pki is not None
    assert prom.url.startswith("https://") and am.url.startswith("https://")

    # The real servers enforce their web configuration: no client certificate, no handshake;
    # a certificate without the password, 401.
    anonymous = ssl.create_default_context(cafile=str(pki.ca_cert))
    for url in (prom.url, am.url):
        request = urllib.request.Request(f"{url}/-/ready", headers={"Authorization": web.authorization()})
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(request, timeout=5, context=anonymous).read()
        with pytest.raises(urllib.error.HTTPError) as unauthorized:
            urllib.request.urlopen(f"{url}/-/ready", timeout=5, context=web.ssl_context()).read()
        assert unauthorized.value.code == 401
    # Prometheus scrapes PD's TLS port with its client certificate.
    assert prom.query('up{job="pd"} == 1'), "PD scraped over mutual TLS"

    env = started_drill_env(cluster, tmp_path / "drill", **cluster.alerting_env())
    other_ca, _ = make_ca(tmp_path, "other-ca", "someone-elses-ca")
    (tmp_path / "username").write_text(web.username)
    (tmp_path / "password").write_text(web.password)
    (tmp_path / "wrong").write_text("not-the-password")
    _secret(env, "am-tls", **{"ca.crt": pki.ca_cert, "tls.crt": pki.client_cert, "tls.key": pki.client_key})
    _secret(env, "am-auth", username=tmp_path / "username", password=tmp_path / "password")
    _secret(env, "wrong-password", username=tmp_path / "username", password=tmp_path / "wrong")
    _secret(env, "wrong-ca", **{"ca.crt": other_ca, "tls.crt": pki.client_cert, "tls.key": pki.client_key})
    _secret(env, "ca-only", **{"ca.crt": pki.ca_cert})
    own_url_spelled_apart = prom.url.replace("127.0.0.1", "localhost")

    def dry_run(name: str, source: dict) -> None:
        env.drill(
            name,
            {
                "target": {"pod": "tikv-1"},
                "safety": {"dryRun": True},
                "diagnosis": {"enabled": False},
                "detection": {"sources": [{"name": "server", **source}]},
            },
        )

    try:
        with PodHistory(cluster) as history:
            refusals = {
                "prom-wrong-ca": {
                    "type": "prometheus",
                    "url": prom.url,
                    "tlsSecretName": "wrong-ca",
                    "authSecretName": "am-auth",
                },
                "am-no-client-cert": {
                    "type": "alertmanager",
                    "url": am.url,
                    "tlsSecretName": "ca-only",
                    "authSecretName": "am-auth",
                },
                "am-wrong-password": {
                    "type": "alertmanager",
                    "url": am.url,
                    "tlsSecretName": "am-tls",
                    "authSecretName": "wrong-password",
                },
                "am-no-secret": {"type": "alertmanager", "url": am.url, "tlsSecretName": "not-there"},
                # The controller's own credentials go to its configured URL only, not to
                # another spelling of it that a spec chose.
                "prom-other-url": {"type": "prometheus", "url": own_url_spelled_apart},
            }
            for name, source in refusals.items():
                dry_run(name, source)
            outcomes = {name: env.wait_phase(name, TERMINAL, timeout=60) for name in refusals}
            replaced_by_refusals = history.replaced()
            # The password put right in the same Secret (a rotation): the next drill reads it
            # again, not as this controller read it for the refusal above.
            _secret(env, "wrong-password", username=tmp_path / "username", password=tmp_path / "password")
            dry_run("am-rotated", refusals["am-wrong-password"])
            rotated = env.wait_phase("am-rotated", TERMINAL, timeout=60)

            sources = [
                {"type": "tickets"},
                # The controller's configured Prometheus, with its mounted credentials.
                {"type": "prometheus", "name": "restart-rule", "alertnames": [RESTART]},
                # Alertmanager through the Secrets this source names.
                {
                    "type": "alertmanager",
                    "name": "alertmanager",
                    "url": am.url,
                    "tlsSecretName": "am-tls",
                    "authSecretName": "am-auth",
                    "alertnames": [RESTART],
                },
            ]
            env.drill(
                "kill",
                {
                    "target": {"pod": "tikv-1"},
                    "detection": {"timeoutSeconds": 40, "expectWithinSeconds": 40, "sources": sources},
                    "diagnosis": {"provider": "offline"},
                },
            )
            st = env.wait_phase("kill", TERMINAL, timeout=120)
        log = "\n".join(p.log_tail(4000) for p in (env.controller, env.monitor) if p)
        events = env.kubectl("get", "events", "-n", env.ns, "-o", "json").stdout
    finally:
        env.stop()

    def refused(name: str, reason: str, words: str) -> None:
        out = outcomes[name]
        assert (out["phase"], out["verdict"], out["reason"]) == ("Failed", "Error", reason), out
        assert "detection source server" in out["message"] and words in out["message"], out["message"]
        assert "injectingAt" not in out["timeline"], out["timeline"]

    refused("prom-wrong-ca", "SourceTLSHandshakeFailed", "the server's certificate is not trusted")
    refused("am-no-client-cert", "SourceTLSHandshakeFailed", "refused the handshake")
    refused("am-wrong-password", "SourceUnauthorized", "refused the request (401)")
    refused("am-no-secret", "TLSSecretNotFound", f"secret {env.ns}/not-there")
    refused("prom-other-url", "SourceTLSHandshakeFailed", "the server's certificate is not trusted")
    assert replaced_by_refusals == {}, "a refused drill touches nothing"
    assert (rotated["phase"], rotated["reason"]) == ("Completed", "DryRun"), rotated

    assert (st["phase"], st["verdict"]) == ("Completed", "Pass"), st
    kill = parse_rfc3339(st["timeline"]["injectedAt"])
    rule, alert, tickets = _source(st, "restart-rule"), _source(st, "alertmanager"), _source(st, "tickets")
    for source in (rule, alert, tickets):
        assert source["state"] == "Detected" and source["ttdSeconds"] > 0, source
    # The rule's firing time is Prometheus' own (its ALERTS series, read over HTTPS), and
    # Alertmanager's startsAt is the same moment.
    window = int(time.time() - kill) + 2
    selector = (
        f'ALERTS{{alertname="{RESTART}",alertstate="firing",instance="{st["victim"]["statusAddress"]}"}}'
    )
    query = urllib.parse.urlencode({"query": f"{selector}[{window}s]"})
    with web.open(f"{prom.url}/api/v1/query?{query}") as r:
        series = json.load(r)["data"]["result"]
    truth = min(float(t) for s in series for t, _ in s["values"] if float(t) > kill)
    assert abs(parse_rfc3339(rule["firingAt"]) - truth) <= EVALUATION, (rule, truth)
    assert abs(parse_rfc3339(alert["firingAt"]) - parse_rfc3339(rule["firingAt"])) <= SCRAPE + EVALUATION
    assert st["timeline"].get("recoveredAt"), st["timeline"]

    key_line = pki.client_key.read_text().splitlines()[1]
    for where, text in (("log", log), ("events", events), ("status", json.dumps([st, outcomes]))):
        assert web.password not in text, f"the password in the {where}"
        assert key_line not in text, f"client key material in the {where}"
