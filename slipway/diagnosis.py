"""Why a deployment is not moving: its row, held against what Temporal says of its workflow."""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from slipway.models import DeploymentView
from slipway.phases import Status
from slipway.temporal import has_pollers
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id

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


QUERY_WITHIN = timedelta(seconds=3)
"""How long a project's serializer is given to answer where a deployment stands: a live
worker answers at once; without one, Temporal would hold the question for a minute."""


async def _queued_in_project(client: Client, view: DeploymentView, silent: set[str]) -> bool | None:
    """Whether the project's serializer holds the deployment, waiting or running; None if
    the serializer runs but no worker answers for it. Only a running serializer is asked;
    one whose task queue left another question unanswered (`silent`, shared by one listing)
    is not asked again, so a listing waits once per silent queue, not once per project."""
    handle = client.get_workflow_handle(project_workflow_id(view.project))
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    if described.status is not WorkflowExecutionStatus.RUNNING:
        return False
    if described.task_queue in silent:
        return None
    try:
        state = await handle.query("state", rpc_timeout=QUERY_WITHIN)
    except RPCError as err:
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            silent.add(described.task_queue)
            return None
        return False
    return view.id in state.get("queued", []) or view.id == state.get("running")


async def _in_project(client: Client, view: DeploymentView, silent: set[str]) -> Diagnosis | None:
    """A queued deployment whose own workflow has not run: waiting behind another of its
    project, or with no worker to run its project's queue; None if neither."""
    if view.status is not Status.QUEUED:
        return None
    held = await _queued_in_project(client, view, silent)
    if held is None:
        return Diagnosis(view, Kind.NO_WORKER, "its project's queue does not answer: no worker")
    if held:
        return Diagnosis(view, Kind.SLOW, "queued behind another deployment of the project")
    return None


async def diagnose(
    client: Client, view: DeploymentView, silent: set[str] | None = None
) -> Diagnosis:
    """Classify one deployment against its workflow (and, when queued, its project's);
    `silent` holds the task queues found without a worker so far (see `diagnose_all`)."""
    silent = set() if silent is None else silent
    handle = client.get_workflow_handle(deployment_workflow_id(view.id))
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return await _in_project(client, view, silent) or Diagnosis(
            view, Kind.ORPHANED, "its workflow was never started"
        )
    if described.status is not WorkflowExecutionStatus.RUNNING:
        state = described.status.name.lower() if described.status else "closed"
        return await _in_project(client, view, silent) or Diagnosis(
            view, Kind.ORPHANED, f"its workflow is {state}"
        )
    pending = list(described.raw_description.pending_activities)
    if not pending:
        return await _between_phases(client, view, described.task_queue, described)
    activity = pending[0]
    queue = activity.activity_options.task_queue.name or described.task_queue
    name = activity.activity_type.name
    if not await has_pollers(client, queue, activities=True):
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
    client: Client, view: DeploymentView, queue: str, described: WorkflowExecutionDescription
) -> Diagnosis:
    """No activity is pending: the workflow itself must run next, on its server's queue."""
    if not await has_pollers(client, queue):
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
    one's diagnosis begins (a reconciler heartbeats there). A task queue found without a
    worker once is not waited on again for another deployment."""
    gate = asyncio.Semaphore(DIAGNOSES_AT_ONCE)
    silent: set[str] = set()

    async def one(view: DeploymentView) -> Diagnosis:
        async with gate:
            if each is not None:
                each(view)
            return await diagnose(client, view, silent)

    return list(await asyncio.gather(*map(one, views)))
