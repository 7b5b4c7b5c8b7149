"""The Schedules each server keeps (reconcile, health monitor): one of each per server,
created by whichever of its workers starts first, updated by the others."""

from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from slipway.models import MonitorInput, ReconcileInput
from slipway.settings import Settings
from slipway.workflow_ids import monitor_schedule_id, reconcile_schedule_id

RECONCILE_WORKFLOW = "ReconcileWorkflow"
MONITOR_WORKFLOW = "MonitorWorkflow"

RUN_DEADLINE = timedelta(minutes=40)
"""A scheduled pass that has not ended by then is ended, so the Schedule runs the next."""


def reconcile_input(settings: Settings) -> ReconcileInput:
    """What this server's reconcile runs are asked to do."""
    return ReconcileInput(
        host_queue=settings.host_task_queue,
        orphan_policy=settings.orphan_policy,
        orphan_grace_seconds=settings.orphan_grace_seconds,
        keep_releases=settings.keep_releases,
        work_retention_seconds=settings.work_retention_seconds,
        upload_retention_seconds=settings.upload_retention_seconds,
        preview_ttl_seconds=settings.preview_ttl_seconds,
    )


def monitor_input(settings: Settings) -> MonitorInput:
    """What this server's monitor passes check, and when they alert."""
    return MonitorInput(
        host_queue=settings.host_task_queue,
        restart_limit=settings.restart_limit,
        restart_window_seconds=settings.restart_window_seconds,
        down_after_failures=settings.down_after_failures,
        webhook_url=settings.alert_webhook_url,
    )


def _schedule(workflow: str, inp: BaseModel, run_id: str, every: float, queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, inp, id=run_id, task_queue=queue, execution_timeout=RUN_DEADLINE
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    """Create the Schedule, or bring an existing one up to date."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """This server's reconcile Schedule."""
    schedule_id = reconcile_schedule_id(settings.server)
    schedule = _schedule(
        RECONCILE_WORKFLOW,
        reconcile_input(settings),
        schedule_id,
        settings.reconcile_interval_seconds,
        settings.task_queue,
    )
    await _ensure(client, schedule_id, schedule)


async def ensure_monitor_schedule(client: Client, settings: Settings) -> None:
    """This server's health-monitor Schedule."""
    schedule_id = monitor_schedule_id(settings.server)
    schedule = _schedule(
        MONITOR_WORKFLOW,
        monitor_input(settings),
        schedule_id,
        settings.monitor_interval_seconds,
        settings.task_queue,
    )
    await _ensure(client, schedule_id, schedule)
