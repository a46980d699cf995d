"""The PD client against PD's answers, good and bad (httpx's own transport for canned bodies)."""

from __future__ import annotations

import json

import httpx
import pytest

from controller.pd import PDBadResponse, PDClient, PDError, PDStoreNotFound, PDUnavailable, pod_of_address

STORES = {
    "count": 1,
    "stores": [
        {
            "store": {
                "id": 4,
                "address": "tikv-2.tikv-peer.tikv.svc:20160",
                "version": "8.5.0",
                "status_address": "tikv-2.tikv-peer.tikv.svc:20180",
                "start_timestamp": 1709287200,
                "last_heartbeat": 1709287260123456789,
                "state_name": "Disconnected",
                "node_state": 1,
                "labels": [{"key": "zone", "value": "a"}],
                "future_field": True,
            },
            "status": {
                "capacity": "311.7GiB",
                "available": "200GiB",
                "used_size": "1.2GiB",
                "leader_count": 8,
                "region_count": 24,
                "start_ts": "2024-03-01T10:00:00Z",
                "last_heartbeat_ts": "2024-03-01T10:01:00.123456789Z",
                "uptime": "36m20.48s",
            },
        }
    ],
}


def client_for(handler) -> PDClient:  # type: ignore[no-untyped-def]
    return PDClient("http://pd:2379", client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def test_parses_pd_formats() -> None:
    pd = client_for(lambda req: httpx.Response(200, json=STORES))
    [store] = await pd.stores()
    assert store.id == 4 and store.pod == "tikv-2"
    assert "state" not in STORES["stores"][0]["store"] and store.store.state == 0  # omitted when Up
    assert store.store.state_name == "Disconnected"
    assert store.store.last_heartbeat_seconds == pytest.approx(1709287260.123456789)
    assert store.status.capacity == int(311.7 * (1 << 30))
    assert store.status.uptime == pytest.approx(2180.48)
    assert store.status.last_heartbeat_ts == pytest.approx(1709287260.123456789)


async def test_pd_error_strings_become_typed_errors() -> None:
    pd = client_for(lambda req: httpx.Response(404, json="[PD:core:ErrStoreNotFound]store 9 not found"))
    with pytest.raises(PDStoreNotFound) as err:
        await pd.store(9)
    assert err.value.code == "PD:core:ErrStoreNotFound" and err.value.message == "store 9 not found"

    pd = client_for(lambda req: httpx.Response(500, text="[PD:server:ErrServerNotStarted]server not started"))
    with pytest.raises(PDError, match="ErrServerNotStarted"):
        await pd.stores()


async def test_non_json_and_wrong_shape_are_bad_responses() -> None:
    pd = client_for(lambda req: httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(PDBadResponse, match="non-JSON"):
        await pd.stores()
    pd = client_for(lambda req: httpx.Response(200, json={"stores": "nope"}))
    with pytest.raises(PDBadResponse, match="unexpected shape"):
        await pd.stores()
    pd = client_for(lambda req: httpx.Response(200, content=json.dumps([{"name": "pd-0"}])))
    with pytest.raises(PDBadResponse):
        await pd.health()


async def test_unreachable_pd() -> None:
    pd = PDClient("http://127.0.0.1:9", timeout=1)
    with pytest.raises(PDUnavailable, match="unreachable"):
        await pd.stores()
    await pd.aclose()


def test_pod_of_address() -> None:
    assert pod_of_address("tikv-1.tikv-peer.tikv.svc:20160") == ("tikv-1", "tikv")
    assert pod_of_address("basic-tikv-0.basic-tikv-peer.prod.svc.cluster.local:20160") == (
        "basic-tikv-0",
        "prod",
    )
    assert pod_of_address("10.0.0.7:20160") == ("10.0.0.7", None)
