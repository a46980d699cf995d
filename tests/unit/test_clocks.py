"""Preflight reads PD's clock (its HTTP Date header) and Prometheus' (time()) and refuses when
either is off by more than the tolerance, however favourably the reading's uncertainty falls."""

from __future__ import annotations

import json
import re
import time
from email.utils import formatdate

import httpx

from controller.operator.clocks import clock_readings, skew_refusal
from controller.pd import PDClient
from controller.prom import PrometheusClient


def _pd(offset: float) -> PDClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"id": 1}, headers={"Date": formatdate(time.time() + offset, usegmt=True)}
        )

    return PDClient("http://pd", client=httpx.AsyncClient(transport=httpx.MockTransport(answer)))


def _prom(offset: float) -> PrometheusClient:
    def answer(request: httpx.Request) -> httpx.Response:
        now = time.time() + offset
        body = {"status": "success", "data": {"resultType": "scalar", "result": [now, str(now)]}}
        return httpx.Response(200, content=json.dumps(body))

    return PrometheusClient("http://prom", client=httpx.AsyncClient(transport=httpx.MockTransport(answer)))


async def test_clocks_in_step_pass() -> None:
    readings = await clock_readings(_pd(0), _prom(0))
    assert [r.source for r in readings] == ["PD", "Prometheus"]
    # The Date header's whole seconds: PD's reading is uncertain by half a second at least.
    assert readings[0].uncertainty >= 0.5 and abs(readings[0].offset) <= 0.6, readings[0]
    assert abs(readings[1].offset) < 0.05, readings[1]
    assert skew_refusal(readings, 1.0) is None


async def test_a_pd_behind_and_a_prometheus_ahead_are_refused_by_name() -> None:
    refused = skew_refusal(await clock_readings(_pd(-5), _prom(3)), 1.0)
    assert refused is not None
    # PD's Date header is whole seconds: 5 s behind reads as 4.5 to 5.5 s.
    behind = re.search(r"PD's clock is ([0-9.]+)s behind", refused)
    assert behind is not None and 4.5 <= float(behind.group(1)) <= 5.5, refused
    assert "Prometheus's clock is 3.0s ahead" in refused, refused


async def test_a_pd_without_a_date_header_is_not_judged() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 1})

    pd = PDClient("http://pd", client=httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    assert await clock_readings(pd, None) == []
