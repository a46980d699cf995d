"""What a spec may point at and whom it may drill, checked before any Lease is taken or any
request is sent: the admin's allow-lists (PD addresses, detection source URLs, pause images)
and the target namespace's consent. A refusal here ends the run before it touches anything."""

from __future__ import annotations

from dataclasses import dataclass

from controller.operator.config import OperatorConfig
from controller.operator.errors import using
from controller.operator.kube import Kube
from controller.operator.model import DrillSpec
from controller.operator.preflight import namespace_trust


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


def normalize_url(url: str) -> str:
    """One spelling per address: scheme added, trailing slash dropped (as PDClient does)."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def _allowed(url: str, allowed: frozenset[str]) -> bool:
    """Empty allow-list: any address (the CRD and the model already insist on http(s))."""
    return not allowed or normalize_url(url) in {normalize_url(a) for a in allowed}


def spec_refusal(spec: DrillSpec, config: OperatorConfig) -> Refusal | None:
    """The addresses and images the spec names, against the controller's allow-lists."""
    if spec.target.pd_address and not _allowed(spec.target.pd_address, config.allowed_pd_addresses):
        return Refusal(
            "PDAddressNotAllowed",
            f"spec.target.pdAddress: {spec.target.pd_address} is not among the controller's "
            "CHAOSDEMO_ALLOWED_PD_ADDRESSES",
        )
    for i, source in enumerate(spec.detection.sources):
        if source.url and not _allowed(source.url, config.allowed_source_urls):
            return Refusal(
                "SourceURLNotAllowed",
                f"spec.detection.sources[{i}].url: {source.url} is not among the controller's "
                "CHAOSDEMO_ALLOWED_SOURCE_URLS",
            )
    if spec.fault.action == "store-outage" and spec.fault.pause_image not in config.allowed_pause_images:
        # The image runs in the TiKV pod with TiKV's volumes, token and network identity: only
        # the admin's list counts, never the shape of its name.
        return Refusal(
            "PauseImageNotAllowed",
            f"spec.fault.pauseImage: {spec.fault.pause_image!r} is not among the pause images the "
            f"controller allows ({', '.join(sorted(config.allowed_pause_images))}; its CHAOSDEMO_PAUSE_IMAGES)",
        )
    return None


async def trust_refusal(
    kube: Kube, target_namespace: str, source_namespace: str, config: OperatorConfig
) -> Refusal | None:
    """Has the target namespace consented to drills from the source namespace?"""
    with using("spec.target.namespace"):
        annotations = await kube.namespace_annotations(target_namespace)
    if annotations is None:
        return Refusal(
            "TargetNamespaceNotFound", f"spec.target.namespace: namespace {target_namespace!r} does not exist"
        )
    refused = namespace_trust(target_namespace, source_namespace, annotations, config.allowed_namespaces)
    return None if refused is None else Refusal(refused.reason, f"spec.target.namespace: {refused.message}")
