"""kopf handlers for both resources, ChaosDemo and ChaosDemoSchedule, in one module above
``operator/`` and ``schedule/`` (so neither imports the other's way up). Thin: everything they do
is in the drill engine and the schedule reconciler, which tests call directly. Run with
``kopf run -m controller.handlers`` or ``chaosdemo controller``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import kopf
from kubernetes_asyncio import client, config
from kubernetes_asyncio.config import ConfigException
from prometheus_client import start_http_server

from controller.alerting.notifications import NotificationLog
from controller.alerting.webhook import ReceiverSettings, start_receiver
from controller.operator import drill, looplag
from controller.operator.config import OperatorConfig
from controller.operator.kube import Kube
from controller.operator.model import FINALIZER, GROUP, PLURAL, VERSION
from controller.prom import PrometheusClient
from controller.schedule.model import SCHEDULE_LABEL, SCHEDULE_PLURAL
from controller.schedule.pacing import SchedulePacing
from controller.schedule.reconcile import reconcile as reconcile_schedule
from controller.tickets import TicketDB

log = logging.getLogger(__name__)
STEP_INTERVAL = OperatorConfig.from_env().step_interval


async def _kube_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except ConfigException:
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.posting.level = logging.WARNING  # our own Events tell the story; kopf's would repeat it
    # A watch stream can go silent without closing (kopf#232, #585): kopf then sees no event,
    # a deletion included, until the stream ends. The API server ends ours every 30 s and we
    # give up on one silent for 45 s; kopf resumes from its resourceVersion, so nothing is lost.
    # (Two deletions in CI waited over 60 s for the finalizer with 120 s here.)
    settings.watching.server_timeout = 30
    settings.watching.client_timeout = 45
    settings.networking.request_timeout = 30
    # At most this many objects are processed at once: a start-up over a thousand ChaosDemos
    # would otherwise run a thousand workers (and their HTTP buffers) at once, and Python keeps
    # that peak as resident memory long after (369 MiB instead of 127, benchmarks/idle.py). An
    # idle worker gives its slot back after half a second instead of kopf's five.
    settings.queueing.worker_limit = 50
    settings.queueing.idle_timeout = 0.5
    cfg = OperatorConfig.from_env()
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port)
    api = await _kube_client()
    db = await TicketDB(cfg.tickets_db).open()
    # A wrong credentials directory stops the controller here, saying which, rather than every drill.
    configured = await asyncio.to_thread(cfg.configured_access)
    prom = PrometheusClient(cfg.prometheus_url, access=configured.prometheus) if cfg.prometheus_url else None
    memo.deps = drill.Deps(kube=Kube(api), db=db, config=cfg, prom=prom, configured=configured)
    memo.receiver = None
    if cfg.webhook_address:
        # Alertmanager's notifications, timed as they arrive: the alertmanager-notification source.
        notifications = NotificationLog()
        host, port = cfg.webhook_host_port()
        memo.receiver = await start_receiver(notifications, ReceiverSettings(host, port, cfg.webhook_token()))
        memo.deps.alerting.notifications = notifications
    memo.api = api
    memo.lag_probe = asyncio.create_task(looplag.measure_forever())
    memo.reactions = set()
    memo.schedule_pacing = SchedulePacing()
    log.info(
        "chaosdemo controller ready: pd=%s prometheus=%s db=%s allowed=%s",
        cfg.pd_address,
        cfg.prometheus_url or "-",
        cfg.tickets_db,
        ",".join(sorted(cfg.allowed_namespaces)) or "(annotation)",
    )


@kopf.on.probe(id="event_loop_lag_seconds")
async def loop_lag_probe(**_: Any) -> float:
    """Reported on /healthz: how late the event loop runs (a blocked loop shows here first)."""
    return looplag.latest()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    memo.lag_probe.cancel()
    if memo.receiver is not None:
        await memo.receiver.cleanup()
    deps: drill.Deps = memo.deps
    await deps.aclose()
    await deps.db.close()
    if deps.prom:
        await deps.prom.aclose()
    await memo.api.close()


def _unsettled(body: kopf.Body, **_: Any) -> bool:
    return drill.needs_stepping(dict(body))


# Only drills with work to do have a timer (kopf stops it when the filter stops matching), so
# finished drills cost nothing. ``advance`` handles its own errors; the short backoff and the
# timeout only matter for a bug that escapes it.
@kopf.timer(GROUP, VERSION, PLURAL, interval=STEP_INTERVAL, when=_unsettled, backoff=1.0, timeout=60.0)
async def drive(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await drill.advance(memo.deps, dict(body))


@kopf.on.event(GROUP, VERSION, PLURAL)
async def react(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    """Step a drill as soon as it changes (created, finalizer added, spec edited), instead of
    waiting up to a timer interval: this is what keeps creation-to-kill fast. The step runs in
    its own task, so a slow one (a diagnosis) never holds up kopf's handling of this object."""
    schedule = (body.get("metadata", {}).get("labels") or {}).get(SCHEDULE_LABEL)
    if schedule:  # a schedule's run changed: its schedule looks at it at its next tick
        memo.schedule_pacing.child_changed(body["metadata"]["namespace"], schedule)
    if type == "DELETED" or drill.settled(dict(body)):
        return
    task = asyncio.create_task(drill.advance(memo.deps, dict(body)))
    memo.reactions.add(task)
    task.add_done_callback(_reaction_done(memo.reactions))


def _reaction_done(tasks: set[asyncio.Task[None]]) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.warning("drill step failed (the timer retries it): %r", task.exception())

    return done


# The restore gives up by itself at recovery.timeoutSeconds (at most 7200 s in the CRD); kopf's
# own timeout is a backstop beyond it, and a failing check is retried after a second.
@kopf.on.delete(GROUP, VERSION, PLURAL, backoff=1.0, timeout=7200.0 + 600.0)
async def restore_on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    done, message = await drill.finalize(memo.deps, dict(body))
    if not done:
        raise kopf.TemporaryError(f"restoring: {message}", delay=1)


# Schedules: one daemon each, asleep until its next run, a change to it or to one of its runs
# (SchedulePacing); a look LISTs the schedule's ChaosDemos only when one is needed. Errors are
# retried by kopf after two seconds.
@kopf.daemon(GROUP, VERSION, SCHEDULE_PLURAL, backoff=2.0, cancellation_timeout=5.0)
async def run_schedule(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    deps: drill.Deps = memo.deps
    pacing: SchedulePacing = memo.schedule_pacing
    while not stopped:
        # The daemon's body is kopf's live view: always the schedule's latest spec.
        meta = body["metadata"]
        key = (meta["uid"], meta.get("generation"), meta["namespace"], meta["name"])
        now = time.time()
        if pacing.due(*key, now):
            # Planned from the API server's current object: kopf's view may not have our own last
            # status write yet (a run's event can arrive first), and a plan from it would redo it.
            fresh = await deps.kube.get_chaosdemo(meta["namespace"], meta["name"], plural=SCHEDULE_PLURAL)
            if fresh is None:
                return  # deleted: kopf stops the daemon
            status = await reconcile_schedule(deps.kube, fresh, now=now, db=deps.db)
            pacing.looked(*key, status, time.time())
        await pacing.sleep(meta["uid"], meta["namespace"], meta["name"], stopped, time.time())


@kopf.on.event(GROUP, VERSION, SCHEDULE_PLURAL)
async def schedule_changed(body: kopf.Body, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    meta = body["metadata"]
    if type == "DELETED":
        memo.schedule_pacing.forget(meta["uid"], meta["namespace"], meta["name"])
    else:
        memo.schedule_pacing.wake(meta["namespace"], meta["name"])
