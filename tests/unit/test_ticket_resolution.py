"""A ticket resolves only when the sources that raised it can see its subject again: a quiet
cycle in which the raising source was blind is not a clear bill."""

from __future__ import annotations

from controller.monitor.loop import sources_seeing
from controller.monitor.snapshot import ProbeResult, Snapshot
from controller.tickets.models import Observation, Severity, Ticket, TicketStatus
from tests.unit.test_invariants import store

ADDRESS = "127.0.10.2:20180"


def ticket(*sources: str, subject: str = "store/2", store_id: int | None = 2) -> Ticket:
    return Ticket(
        id=1,
        cluster="pd-1",
        invariant="store_unreachable",
        subject=subject,
        store_id=store_id,
        severity=Severity.HIGH,
        status=TicketStatus.OPEN,
        opened_at=10.0,
        last_seen_at=10.0,
        signals=["store_unreachable"],
        observations=[Observation(signal="store_unreachable", source=s, at=10.0, detail="") for s in sources],
    )


def _snap(**kw) -> Snapshot:  # type: ignore[no-untyped-def]
    return Snapshot(taken_at=20.0, stores=[store(1), store(2)], stores_fresh=kw.pop("fresh", True), **kw)


def test_a_probe_ticket_needs_the_probe_to_see_again() -> None:
    raised = ticket("probe")
    # PD and Prometheus answer, but the probe did not run: cannot vouch.
    assert not {"probe"} <= sources_seeing(_snap(up={ADDRESS: 1.0}), raised)
    assert {"probe"} <= sources_seeing(_snap(probes={ADDRESS: ProbeResult(True, "HTTP 200", 1.0)}), raised)


def test_a_scrape_ticket_needs_the_target_back_in_prometheus() -> None:
    raised = ticket("prometheus", "probe")
    probes = {ADDRESS: ProbeResult(True, "HTTP 200", 1.0)}
    assert "prometheus" not in sources_seeing(_snap(up={"127.0.10.1:20180": 1.0}, probes=probes), raised)
    assert {"prometheus", "probe"} <= sources_seeing(_snap(up={ADDRESS: 1.0}, probes=probes), raised)
    assert "prometheus" not in sources_seeing(_snap(up=None, probes=probes), raised)  # Prometheus down


def test_pd_and_region_tickets_need_pd() -> None:
    assert sources_seeing(_snap(pd_error="ConnectError"), ticket("pd", subject="pd", store_id=None)) == set()
    assert sources_seeing(_snap(fresh=False), ticket("pd", subject="regions", store_id=None)) == set()
    assert sources_seeing(_snap(), ticket("pd", subject="regions", store_id=None)) == {"pd"}
