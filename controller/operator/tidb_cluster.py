"""``target.tidbCluster``: what a drill needs, read from tidb-operator's TidbCluster rather than
written out by hand. tidb-operator names everything after the cluster: PD's client Service
``<name>-pd`` on port 2379, the TiKV pods labelled ``app.kubernetes.io/instance: <name>`` and
``app.kubernetes.io/component: tikv``, and with ``spec.tlsCluster.enabled`` a client
certificate in the Secret ``<name>-cluster-client-secret`` (ca.crt, tls.crt, tls.key).

tidb-operator v2 has no TidbCluster: its ``Cluster`` (``core.pingcap.com``) of that name publishes
PD's address in ``status.pd``, and its TiKV pods carry ``pingcap.com/cluster: <name>`` and
``pingcap.com/component: tikv``. v2 creates no client certificate (users bring their own), so a
TLS v2 cluster needs ``target.tls``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.kube import Kube
from controller.operator.model import Selector, Target, TargetTLS
from controller.operator.operator_pause import GROUP as V2_GROUP
from controller.operator.operator_pause import VERSION as V2_VERSION

PD_CLIENT_PORT = 2379


@dataclass(frozen=True)
class TidbClusterRefusal:
    reason: str
    message: str


def derived_target(target: Target, namespace: str, cluster: dict[str, Any]) -> Target:
    """The target as if written out: selector, PD's address, and the client Secret when the
    cluster runs TLS (a target.tls the spec gives is kept)."""
    name = target.tidb_cluster
    tls_enabled = bool(((cluster.get("spec") or {}).get("tlsCluster") or {}).get("enabled"))
    scheme = "https" if tls_enabled else "http"
    tls = target.tls or (TargetTLS(secretName=f"{name}-cluster-client-secret") if tls_enabled else None)
    return target.model_copy(
        update={
            "selector": Selector(
                matchLabels={
                    "app.kubernetes.io/instance": name,
                    "app.kubernetes.io/component": "tikv",
                    "app.kubernetes.io/managed-by": "tidb-operator",
                }
            ),
            "pd_address": f"{scheme}://{name}-pd.{namespace}.svc:{PD_CLIENT_PORT}",
            "tls": tls,
            # Derived: the pinned spec reads as one written out (and validates as one).
            "tidb_cluster": "",
        }
    )


def derived_v2_target(target: Target, namespace: str, cluster: dict[str, Any]) -> Target | TidbClusterRefusal:
    """The target as if written out, from tidb-operator v2's Cluster."""
    name = target.tidb_cluster
    pd_address = str((cluster.get("status") or {}).get("pd") or "")
    if not pd_address:
        return TidbClusterRefusal(
            "TidbClusterNotReady",
            f"tidb-operator v2's Cluster {namespace}/{name} has no PD address yet (status.pd): "
            "its PD group is not up, or tidb-operator is not running",
        )
    if pd_address.startswith("https://") and target.tls is None:
        return TidbClusterRefusal(
            "TLSSecretRequired",
            f"tidb-operator v2's Cluster {namespace}/{name} serves PD over TLS ({pd_address}) and v2 creates "
            "no client certificate: name the Secret with yours in spec.target.tls.secretName",
        )
    return target.model_copy(
        update={
            "selector": Selector(
                matchLabels={
                    "pingcap.com/cluster": name,
                    "pingcap.com/component": "tikv",
                    "pingcap.com/managed-by": "tidb-operator",
                }
            ),
            "pd_address": pd_address,
            "tidb_cluster": "",
        }
    )


async def resolve(kube: Kube, target: Target, namespace: str) -> Target | TidbClusterRefusal:
    """The target derived from its TidbCluster (tidb-operator v1), else from the v2 Cluster of
    that name, or why it cannot be."""
    name = target.tidb_cluster
    where = f"TidbCluster {namespace}/{name} (spec.target.tidbCluster)"
    try:
        cluster = await kube.tidb_cluster(namespace, name)
        if cluster is not None:
            return derived_target(target, namespace, cluster)
        v2 = await kube.get_custom(V2_GROUP, V2_VERSION, namespace, "clusters", name)
    except ApiException as exc:
        if exc.status == 403:
            return TidbClusterRefusal(
                "TidbClusterForbidden",
                f"the controller may not read {where}: grant get on tidbclusters "
                "(tidb-operator v1) and clusters.core.pingcap.com (v2)",
            )
        raise
    if v2 is None:
        return TidbClusterRefusal(
            "TidbClusterNotFound",
            f"{where} does not exist, nor a tidb-operator v2 Cluster of that name "
            "(or tidb-operator's CRDs are not installed)",
        )
    return derived_v2_target(target, namespace, v2)
