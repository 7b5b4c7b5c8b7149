"""The reconcile Schedule each server keeps: one per server, created by whichever of its
workers starts first, updated by the others."""

from datetime import timedelta

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

from slipway.models import ReconcileInput
from slipway.settings import Settings
from slipway.workflow_ids import reconcile_schedule_id

RECONCILE_WORKFLOW = "ReconcileWorkflow"

RUN_DEADLINE = timedelta(minutes=40)
"""A reconcile pass that has not ended by then is ended, so the Schedule runs the next."""


def reconcile_input(settings: Settings) -> ReconcileInput:
    """What this server's reconcile runs are asked to do."""
    return ReconcileInput(
        host_queue=settings.host_task_queue,
        orphan_policy=settings.orphan_policy,
        orphan_grace_seconds=settings.orphan_grace_seconds,
        keep_releases=settings.keep_releases,
        work_retention_seconds=settings.work_retention_seconds,
        upload_retention_seconds=settings.upload_retention_seconds,
    )


def _schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILE_WORKFLOW,
            reconcile_input(settings),
            id=reconcile_schedule_id(settings.server),
            task_queue=settings.task_queue,
            execution_timeout=RUN_DEADLINE,
        ),
        spec=ScheduleSpec(
            intervals=[
                ScheduleIntervalSpec(every=timedelta(seconds=settings.reconcile_interval_seconds))
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> None:
    """Create this server's reconcile Schedule, or bring an existing one up to date."""
    schedule = _schedule(settings)
    try:
        await client.create_schedule(reconcile_schedule_id(settings.server), schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(reconcile_schedule_id(settings.server)).update(replace)
