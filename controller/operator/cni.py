"""Does anything enforce NetworkPolicies here? network-partition's cut is only as real as the CNI
that applies it: flannel alone creates the policy and cuts nothing. The admin may say which
enforcer runs (``CHAOSDEMO_NETWORK_POLICY_ENFORCER``); otherwise preflight looks for the DaemonSet
of a CNI known to enforce them in kube-system, and a drill it cannot confirm goes on with a
warning rather than a refusal (the cluster may run one under another name)."""

from __future__ import annotations

from kubernetes_asyncio.client.exceptions import ApiException

from controller.operator.kube import Kube

SYSTEM_NAMESPACE = "kube-system"
# DaemonSet name prefixes of CNIs that enforce NetworkPolicies, and what to call them.
ENFORCERS = {
    "calico-node": "Calico",
    "canal": "Canal (Calico's policy engine)",
    "cilium": "Cilium",
    "antrea-agent": "Antrea",
    "kube-router": "kube-router",
    "weave-net": "Weave Net",
}


def enforcer_among(daemonsets: list[str]) -> str | None:
    return next(
        (name for ds in daemonsets for prefix, name in ENFORCERS.items() if ds.startswith(prefix)), None
    )


async def enforcement_warning(kube: Kube, configured: str) -> str | None:
    """Why the cut may not happen (None: an enforcer is known to run)."""
    if configured:
        return None
    try:
        found = enforcer_among(await kube.daemonset_names(SYSTEM_NAMESPACE))
    except ApiException as exc:
        if exc.status != 403:
            raise
        return (
            f"the controller may not list DaemonSets in {SYSTEM_NAMESPACE} to find the CNI: NetworkPolicy "
            "enforcement is not confirmed (set CHAOSDEMO_NETWORK_POLICY_ENFORCER, Helm "
            "networkPartition.enforcer, to say what enforces them)"
        )
    if found is not None:
        return None
    known = ", ".join(sorted(set(ENFORCERS.values())))
    return (
        f"no CNI known to enforce NetworkPolicies runs in {SYSTEM_NAMESPACE} ({known}): the policy may cut "
        "nothing (flannel alone does not enforce them). Set CHAOSDEMO_NETWORK_POLICY_ENFORCER (Helm "
        "networkPartition.enforcer) if one does"
    )
