"""Malformed PD and Prometheus answers never crash the monitor (property-based)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.monitor.loop import Monitor
from controller.monitor.snapshot import Snapshotter
from controller.pd import PDClient
from controller.prom import PrometheusClient
from controller.tickets import TicketDB

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
BODIES = st.one_of(
    JSONISH.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.just(b"<html>502 Bad Gateway</html>"),
    st.just(json.dumps({"count": 1, "stores": [{"store": {"id": "x"}}]}).encode()),
    st.just(
        json.dumps(
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": ["a"]}]},
            }
        ).encode()
    ),
)
STATUS = st.sampled_from([200, 200, 200, 404, 500, 503])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pd_body=BODIES, pd_status=STATUS, prom_body=BODIES, prom_status=STATUS)
def test_bad_answers_never_crash_a_cycle(
    tmp_path: Path, pd_body: bytes, pd_status: int, prom_body: bytes, prom_status: int
) -> None:
    async def run() -> None:
        pd = PDClient(
            "http://pd",
            client=httpx.AsyncClient(
                transport=httpx.MockTransport(lambda r: httpx.Response(pd_status, content=pd_body))
            ),
        )
        prom = PrometheusClient(
            "http://prom",
            client=httpx.AsyncClient(
                transport=httpx.MockTransport(lambda r: httpx.Response(prom_status, content=prom_body))
            ),
        )
        snapshotter = Snapshotter(pd, prom, probe=False)
        async with TicketDB(tmp_path / "t.db") as db:
            monitor = Monitor(snapshotter, db, cluster="c", interval=1)
            result = await monitor.cycle()  # must not raise
            # Whatever PD said, a PD that does not answer like PD is a PD problem, not a crash.
            if result.snapshot.pd_error:
                assert any(s.invariant == "pd_unhealthy" for s in result.signals)
        await snapshotter.aclose()

    asyncio.run(run())
