"""target.tidbCluster: the target as a user of each tidb-operator version would write it out."""

from __future__ import annotations

from controller.operator.model import Target, TargetTLS
from controller.operator.tidb_cluster import TidbClusterRefusal, derived_target, derived_v2_target


def test_v1_derives_from_tidbcluster_names_and_its_client_secret() -> None:
    target = Target.model_validate({"tidbCluster": "basic"})
    tls_on = {"spec": {"tlsCluster": {"enabled": True}}}
    derived = derived_target(target, "db", tls_on)
    assert derived.pd_address == "https://basic-pd.db.svc:2379"
    assert derived.selector.match_labels["app.kubernetes.io/instance"] == "basic"
    assert derived.tls is not None and derived.tls.secret_name == "basic-cluster-client-secret"
    plain = derived_target(target, "db", {"spec": {}})
    assert plain.pd_address == "http://basic-pd.db.svc:2379" and plain.tls is None


def test_v2_derives_from_the_clusters_published_pd_address() -> None:
    target = Target.model_validate({"tidbCluster": "basic"})
    derived = derived_v2_target(target, "db", {"status": {"pd": "http://pd-pd.db:2379"}})
    assert not isinstance(derived, TidbClusterRefusal)
    assert derived.pd_address == "http://pd-pd.db:2379" and derived.tidb_cluster == ""
    assert derived.selector.match_labels == {
        "pingcap.com/cluster": "basic",
        "pingcap.com/component": "tikv",
        "pingcap.com/managed-by": "tidb-operator",
    }
    # Not published yet: refused, saying why.
    waiting = derived_v2_target(target, "db", {"status": {}})
    assert isinstance(waiting, TidbClusterRefusal) and waiting.reason == "TidbClusterNotReady"
    # TLS: v2 makes no client certificate; the user's own must be named.
    tls = {"status": {"pd": "https://pd-pd.db:2379"}}
    refused = derived_v2_target(target, "db", tls)
    assert isinstance(refused, TidbClusterRefusal) and refused.reason == "TLSSecretRequired"
    named = target.model_copy(update={"tls": TargetTLS(secretName="my-client")})
    derived = derived_v2_target(named, "db", tls)
    assert not isinstance(derived, TidbClusterRefusal) and derived.tls == named.tls
