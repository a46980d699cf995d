"""What a spec may point at and whom it may drill, decided before any Lease or request."""

from __future__ import annotations

import copy
from typing import Any

from controller.operator.admission import spec_refusal
from controller.operator.config import OperatorConfig
from controller.operator.drill import Deps, advance
from controller.operator.model import DrillSpec
from tests.support.fake_api import APIServer, drill


def _spec(**fields: Any) -> DrillSpec:
    return DrillSpec.model_validate(fields)


def test_only_the_admins_pause_images_may_run() -> None:
    """A name shaped like a pause image is not enough: the image runs with TiKV's volumes, token
    and network identity, so only the controller's configured list counts."""
    config = OperatorConfig()
    assert config.allowed_pause_images == {"registry.k8s.io/pause:3.10"}

    def outage(image: str, action: str = "store-outage") -> DrillSpec:
        return _spec(fault={"action": action, "pauseImage": image})

    assert spec_refusal(outage("registry.k8s.io/pause:3.10"), config) is None
    refused = spec_refusal(outage("evil.example/x/pause:1"), config)
    assert refused is not None and refused.reason == "PauseImageNotAllowed"
    assert "evil.example/x/pause:1" in refused.message and "registry.k8s.io/pause:3.10" in refused.message
    assert spec_refusal(outage("evil.example/x/pause:1", "pod-kill"), config) is None
    mirrored = OperatorConfig(allowed_pause_images=frozenset({"mirror.corp/k8s/pause:3.10"}))
    assert spec_refusal(outage("mirror.corp/k8s/pause:3.10"), mirrored) is None
    assert spec_refusal(outage("registry.k8s.io/pause:3.10"), mirrored) is not None


def test_source_urls_and_pd_addresses_only_from_the_allow_lists() -> None:
    config = OperatorConfig(
        allowed_pd_addresses=frozenset({"http://pd.tikv.svc:2379"}),
        allowed_source_urls=frozenset({"http://prometheus.monitoring.svc:9090/"}),
    )
    ok = _spec(
        target={"pdAddress": "http://pd.tikv.svc:2379/"},
        detection={"sources": [{"type": "prometheus", "url": "http://prometheus.monitoring.svc:9090"}]},
    )
    assert spec_refusal(ok, config) is None
    elsewhere = _spec(
        detection={
            "sources": [
                {"type": "tickets"},
                {"type": "alertmanager", "url": "http://169.254.169.254/latest/meta-data"},
            ]
        }
    )
    refused = spec_refusal(elsewhere, config)
    assert refused is not None and refused.reason == "SourceURLNotAllowed"
    assert refused.message.startswith("spec.detection.sources[1].url:"), refused.message
    pd = spec_refusal(_spec(target={"pdAddress": "http://fake-pd.evil:2379"}), config)
    assert pd is not None and pd.reason == "PDAddressNotAllowed"
    # No allow-list: the admin chose to let specs name any http(s) address.
    assert spec_refusal(elsewhere, OperatorConfig()) is None


class Untrusting(APIServer):
    """A target namespace opted in but not naming the drill's namespace; every Lease call and
    every namespace read recorded."""

    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__(obj)
        self.calls: list[str] = []

    async def namespace_annotations(self, namespace: str) -> dict[str, str]:
        self.calls.append(f"annotations:{namespace}")
        return {"chaos.operator.dev/enabled": "true", "chaos.operator.dev/allowed-from": "team-b"}

    async def read_lease(self, namespace: str, name: str) -> None:
        self.calls.append(f"read_lease:{namespace}")

    async def create_lease(self, namespace: str, name: str, holder: str, duration_seconds: int) -> bool:
        self.calls.append(f"create_lease:{namespace}")
        return True


async def test_an_untrusted_namespace_takes_no_lease_and_sends_no_request() -> None:
    """A ChaosDemo in team-a aimed at tikv, which trusts only team-b: refused before the target's
    Lease is read or taken, and before PD is asked anything (its address is one nothing serves:
    a call would show as a different refusal)."""
    obj = drill({}, spec={"target": {"namespace": "tikv", "pdAddress": "http://127.0.0.1:9"}})
    obj["metadata"]["namespace"] = "team-a"
    obj["status"] = {}
    api = Untrusting(obj)
    await advance(Deps(kube=api, db=None, config=OperatorConfig()), copy.deepcopy(obj))  # type: ignore[arg-type]
    status = api.obj["status"]
    assert (status["verdict"], status["reason"]) == ("Error", "NamespaceNotTrusted"), status
    assert api.calls == ["annotations:tikv"], api.calls
    assert "run" not in status and api.destructive == []
