"""``target.tidbCluster``: what a drill needs, read from tidb-operator's TidbCluster rather than
written out by hand. tidb-operator names everything after the cluster: PD's client Service
``<name>-pd`` on port 2379, the TiKV pods labelled ``app.kubernetes.io/instance: <name>`` and
``app.kubernetes.io/component: tikv``, and with ``spec.tlsCluster.enabled`` a client
certificate in the Secret ``<name>-cluster-client-secret`` (ca.crt, tls.crt, tls.key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.kube import Kube
from controller.operator.model import Selector, Target, TargetTLS

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


async def resolve(kube: Kube, target: Target, namespace: str) -> Target | TidbClusterRefusal:
    """The target derived from its TidbCluster, or why it cannot be."""
    where = f"TidbCluster {namespace}/{target.tidb_cluster} (spec.target.tidbCluster)"
    try:
        cluster = await kube.tidb_cluster(namespace, target.tidb_cluster)
    except ApiException as exc:
        if exc.status == 403:
            return TidbClusterRefusal(
                "TidbClusterForbidden", f"the controller may not read {where}: grant get on tidbclusters"
            )
        raise
    if cluster is None:
        return TidbClusterRefusal(
            "TidbClusterNotFound", f"{where} does not exist (or tidb-operator's CRDs are not installed)"
        )
    return derived_target(target, namespace, cluster)
