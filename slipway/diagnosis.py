"""Why a deployment is not moving: its row, held against what Temporal says of its workflow."""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from slipway.lookups import Lookups
from slipway.models import DeploymentView
from slipway.phases import Status
from slipway.workflow_ids import deployment_workflow_id

UNTAKEN = timedelta(seconds=5)
"""A live worker takes a scheduled activity at once; one left waiting longer has nobody.
(Temporal lists a dead worker among a queue's pollers for minutes after it died.)"""


class Kind(StrEnum):
    """What a deployment that has not moved for a while is doing."""

    SLOW = "slow"
    """Its workflow runs and a worker is on it: it is working, or about to retry."""
    ORPHANED = "orphaned"
    """Its row says in progress but its workflow is closed or was never started."""
    NO_WORKER = "no-worker"
    """Its workflow runs but nobody polls the task queue its next step waits on."""


@dataclass(frozen=True)
class Diagnosis:
    """A deployment's kind, with the detail that decided it."""

    view: DeploymentView
    kind: Kind
    detail: str


async def _in_project(lookups: Lookups, view: DeploymentView) -> Diagnosis | None:
    """A queued deployment whose own workflow has not run: waiting behind another of its
    project, or with no worker to run its project's queue; None if neither."""
    if view.status is not Status.QUEUED:
        return None
    held = await lookups.held(view.project)
    if held is None:
        return Diagnosis(view, Kind.NO_WORKER, "its project's queue does not answer: no worker")
    if view.id in held:
        return Diagnosis(view, Kind.SLOW, "queued behind another deployment of the project")
    return None


async def diagnose(
    client: Client, view: DeploymentView, lookups: Lookups | None = None
) -> Diagnosis:
    """Classify one deployment against its workflow (and, when queued, its project's);
    `lookups` holds what the listing it belongs to already asked (see `diagnose_all`)."""
    lookups = Lookups(client) if lookups is None else lookups
    handle = client.get_workflow_handle(deployment_workflow_id(view.id))
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return await _in_project(lookups, view) or Diagnosis(
            view, Kind.ORPHANED, "its workflow was never started"
        )
    if described.status is not WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "closed"
        return await _in_project(lookups, view) or Diagnosis(
            view, Kind.ORPHANED, f"its workflow is {state}"
        )
    pending = list(described.raw_description.pending_activities)
    if not pending:
        return await _between_phases(lookups, view, described.task_queue, described)
    activity = pending[0]
    queue = activity.activity_options.task_queue.name or described.task_queue
    name = activity.activity_type.name
    if not await lookups.has_pollers(queue, activities=True):
        return Diagnosis(view, Kind.NO_WORKER, f"{name} waits; no worker polls {queue}")
    if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
        untaken = _untaken(view, name, activity.scheduled_time.ToDatetime(tzinfo=UTC), queue)
        if untaken is not None:
            return untaken
    detail = f"{activity.activity_type.name}, attempt {activity.attempt}"
    if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and (
        activity.HasField("last_heartbeat_time")
    ):
        beat = activity.last_heartbeat_time.ToDatetime(tzinfo=UTC)
        ago = (datetime.now(UTC) - beat) // timedelta(seconds=1)
        detail += f", heartbeat {ago}s ago"
    return Diagnosis(view, Kind.SLOW, detail)


async def _between_phases(
    lookups: Lookups, view: DeploymentView, queue: str, described: WorkflowExecutionDescription
) -> Diagnosis:
    """No activity is pending: the workflow itself must run next, on its server's queue."""
    if not await lookups.has_pollers(queue):
        return Diagnosis(view, Kind.NO_WORKER, f"its workflow waits; no worker polls {queue}")
    raw = described.raw_description
    task = raw.pending_workflow_task
    if raw.HasField("pending_workflow_task") and (
        task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED
    ):
        scheduled = task.scheduled_time.ToDatetime(tzinfo=UTC)
        untaken = _untaken(view, "its workflow", scheduled, queue)
        if untaken is not None:
            return untaken
    return Diagnosis(view, Kind.SLOW, "between two phases")


def _untaken(view: DeploymentView, what: str, scheduled: datetime, queue: str) -> Diagnosis | None:
    """A task that has waited on its queue longer than a live worker would leave it."""
    waited = datetime.now(UTC) - scheduled
    if waited <= UNTAKEN:
        return None
    return Diagnosis(
        view,
        Kind.NO_WORKER,
        f"{what} waited {waited // timedelta(seconds=1)}s on {queue}; no live worker took it "
        "(the last pollers seen there are gone)",
    )


DIAGNOSES_AT_ONCE = 64
"""Deployments diagnosed concurrently: a diagnosis can wait seconds on a project whose
worker is gone, and a list of them should not take that long times every such project."""


async def diagnose_all(
    client: Client,
    views: Iterable[DeploymentView],
    each: Callable[[DeploymentView], object] | None = None,
) -> list[Diagnosis]:
    """Classify the deployments, several at once, in their order; `each` is called as each
    one's diagnosis begins (a reconciler heartbeats there). What they share (a task queue,
    a project's serializer) is asked about once for them all."""
    gate = asyncio.Semaphore(DIAGNOSES_AT_ONCE)
    lookups = Lookups(client)

    async def one(view: DeploymentView) -> Diagnosis:
        async with gate:
            if each is not None:
                each(view)
            return await diagnose(client, view, lookups)

    return list(await asyncio.gather(*map(one, views)))
