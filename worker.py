"""The Slipway worker: workflows and database activities on the shared queue, this server's
deployments and their host-bound activities on its own queue. SIGTERM drains in-flight work,
then exits."""

import asyncio
import compileall
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.worker import Interceptor, Worker

import workflows
from activities.adapters.caddy import StaticServerError, load_rules
from activities.adapters.releases import move_old_links
from activities.adapters.traefik import serve_shared
from activities.failures import AttemptInterceptor
from activities.host import HostActivities
from activities.lifecycle import LifecycleActivities
from activities.monitor import MonitorActivities
from activities.notify import NotifyActivities
from activities.previews import PreviewActivities
from activities.reconcile import CleanupActivities, ReconcileActivities
from activities.routing import RoutingActivities
from activities.tracking import TrackingActivities
from activities.traffic import TrafficActivities
from activities.turns import TurnActivities
from slipway import logs, tracing
from slipway.database import engine_for, migrate
from slipway.heap import settle
from slipway.in_progress_metric import count_in_progress_from
from slipway.metrics_endpoint import MetricsEndpoint, free_loopback_address
from slipway.schedules import ensure_monitor_schedule, ensure_reconcile_schedule
from slipway.settings import Settings
from slipway.temporal import connect, metrics_runtime, release_sticky
from workflows.deployment import DeploymentWorkflow
from workflows.monitor import MonitorWorkflow
from workflows.notify import NotifyWorkflow
from workflows.project import ProjectWorkflow
from workflows.reconcile import ReconcileWorkflow

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
BLOCKING_THREADS = 128
"""Threads for the activities' blocking work (files, database): one per in-flight activity."""


def build_workers(
    client: Client,
    settings: Settings,
    interceptors: Sequence[Interceptor] = (),
    *,
    shared_queue: bool = True,
) -> list[Worker]:
    """The workers one server runs: host-bound, and unless `shared_queue` is False the
    shared one (workflows, database); `interceptors` come before Slipway's own."""
    engine = engine_for(settings.sqlalchemy_url, checked=False)
    chain = [*interceptors, *tracing.worker_interceptors(), AttemptInterceptor()]
    monitor = MonitorActivities(settings, engine)
    tracking = TrackingActivities(engine, settings).all()
    notify_end = NotifyActivities(engine, settings).notify_end
    sticky = timedelta(seconds=settings.sticky_timeout_seconds)
    # A deployment's own workflow runs on its server's queue, next to its phases: each
    # activity it schedules there is handed back with the workflow task's completion
    # (eager execution) instead of waiting for a poll. Its bookkeeping and the end's notice
    # run beside it.
    previews = PreviewActivities(settings, engine)
    lifecycle = LifecycleActivities(settings, engine)
    host = Worker(
        client,
        task_queue=settings.host_task_queue,
        workflows=[DeploymentWorkflow, NotifyWorkflow],
        activities=[
            *HostActivities(settings, engine).all(),
            *TrafficActivities(settings, engine).all(),
            CleanupActivities(engine, settings).cleanup_host,
            monitor.check_server,
            *RoutingActivities(settings, engine, client).all(),
            *tracking,
            notify_end,
            *previews.host(),
            *lifecycle.on_host(),
        ],
        interceptors=chain,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        sticky_queue_schedule_to_start_timeout=sticky,
    )
    if not shared_queue:
        return [host]
    shared = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[
            DeploymentWorkflow,
            ProjectWorkflow,
            ReconcileWorkflow,
            MonitorWorkflow,
            NotifyWorkflow,
        ],
        activities=[
            *tracking,
            notify_end,
            ReconcileActivities(engine, client, settings).resolve_orphans,
            ReconcileActivities(engine, client, settings).expire_previews,
            *previews.shared(),
            monitor.deliver_alert,
            *lifecycle.shared(),
            *TurnActivities(engine, client).all(),
        ],
        interceptors=chain,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        sticky_queue_schedule_to_start_timeout=sticky,
    )
    return [shared, host]


def expose_metrics(settings: Settings) -> tuple[Runtime | None, MetricsEndpoint | None]:
    """With `SLIPWAY_METRICS_PORT`, the endpoint that serves this worker's metrics and the
    Temporal runtime whose SDK metrics it appends (connect the worker's client with it)."""
    if not settings.metrics_port:
        return None, None
    sdk = free_loopback_address()
    runtime = metrics_runtime(sdk)
    count_in_progress_from(engine_for(settings.sqlalchemy_url, checked=False))
    endpoint = MetricsEndpoint(settings.metrics_address, settings.metrics_port, sdk)
    return runtime, endpoint


def compile_workflows() -> bool:
    """Cache the workflows' bytecode beside their sources; True if every module has it.
    Temporal's sandbox imports a workflow's module afresh for each workflow it runs, and
    where Python writes no bytecode (`PYTHONDONTWRITEBYTECODE`, common in containers) every
    such import compiles the source again. Compiled once here instead (a cache that is up to
    date is only looked at); where the package cannot be written, imports compile as before."""
    return bool(compileall.compile_dir(Path(workflows.__file__).parent, quiet=2))


async def serve(settings: Settings, interceptors: Sequence[Interceptor] = ()) -> None:
    """Migrate the schema, bring the static server's configuration up to date with the kept
    releases (its configuration file first: what Caddy starts with), write the shared route
    that relies on it, then poll both queues until SIGTERM or SIGINT."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=BLOCKING_THREADS)
    )
    await asyncio.to_thread(migrate, settings.sqlalchemy_url)
    if not await asyncio.to_thread(compile_workflows):
        logging.info("workflow bytecode not cached: the sandbox compiles each module it loads")
    moved = await asyncio.to_thread(move_old_links, settings.layout)
    if moved:
        logging.info("release links moved to %s for %s", settings.layout.slots, ", ".join(moved))
    try:
        await asyncio.to_thread(load_rules, settings)
    except StaticServerError as err:
        logging.warning("static rules not loaded yet (a static deployment loads them): %s", err)
    await asyncio.to_thread(serve_shared, settings)
    if tracing.start("slipway-worker"):
        logging.info("traces exported over OTLP")
    runtime, endpoint = expose_metrics(settings)
    if endpoint is not None:
        logging.info("metrics on http://%s:%d/metrics", settings.metrics_address, endpoint.port)
    client = await connect(settings, runtime)
    await ensure_reconcile_schedule(client, settings)
    await ensure_monitor_schedule(client, settings)
    workers = build_workers(client, settings, interceptors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = [asyncio.create_task(w.run()) for w in workers]
    try:
        queues = [settings.task_queue, settings.host_task_queue]
        released = await release_sticky(client, queues)
        logging.info("took over %d running workflows' next tasks from earlier workers", released)
    except RPCError as err:
        logging.warning("running workflows keep their sticky queues until it times out: %s", err)
    settle()
    logging.info(
        "worker polling %s and %s on %s",
        settings.task_queue,
        settings.host_task_queue,
        settings.temporal_address,
    )
    await stop.wait()
    logging.info("draining in-flight work, then stopping")
    await asyncio.gather(*(w.shutdown() for w in workers))
    await asyncio.gather(*running, return_exceptions=True)
    if endpoint is not None:
        endpoint.close()


def main() -> None:
    """Run a worker configured from `SLIPWAY_*` environment variables."""
    settings = Settings()
    logs.configure(settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
