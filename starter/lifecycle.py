"""`slipway stop/start/restart/delete`: a lifecycle action handed to the project's serializer
as an update (starting the serializer if it is idle), answered once it is done. The
serializer runs it between two deployments, on the servers the project has files on."""

import asyncio

import sqlalchemy as sa
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError

from slipway import lifecycle, previews
from slipway.models import (
    LifecycleAction,
    LifecycleRequest,
    LifecycleResult,
    ProjectInput,
    busy_message,
)
from slipway.names import validate_project_name
from slipway.search_attributes import PROJECT_NAME
from slipway.settings import Settings
from slipway.workflow_ids import project_workflow_id


class LifecycleError(Exception):
    """The action cannot be done as asked (a deployment running, nothing deployed yet); the
    message says why."""


class UnansweredError(LifecycleError):
    """No worker took the action up in time: the project's serializer is not running."""


async def change(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    action: LifecycleAction,
    *,
    cancel: bool = False,
) -> LifecycleResult:
    """Stop, start, restart or delete `project` and wait until it is done. Each is refused while
    a deployment of the project is queued or under way, except a delete with `cancel`: then
    those are cancelled, and their ends waited for, first. An unknown project raises
    `ProjectNotFoundError`."""
    validate_project_name(project)
    await asyncio.to_thread(lifecycle.require_project, engine, project)
    if not (action is LifecycleAction.DELETE and cancel):
        busy = await asyncio.to_thread(lifecycle.running_deployments, engine, project)
        if busy:
            raise LifecycleError(busy_message(project, busy, action))
    if action is LifecycleAction.DELETE:
        live = await asyncio.to_thread(previews.live_previews, engine, project)
        if live:
            raise LifecycleError(
                f"{project} has previews ({', '.join(live)}): remove them first with "
                f"`slipway previews rm {project} NAME`, then delete it"
            )
    queues = await asyncio.to_thread(
        lifecycle.host_queues, engine, settings.task_queue, project, settings.server
    )
    # The workflow's module loads every activity's (Docker's client among them): imported
    # where it is started, so the CLI's other commands start without it.
    from workflows.project import ProjectWorkflow

    request = LifecycleRequest(
        project=project,
        action=action,
        host_queues=queues,
        cancel=cancel,
        health_timeout_seconds=settings.health_timeout_seconds,
        pickup_seconds=settings.lifecycle_pickup_seconds,
        cancel_wait_seconds=settings.lifecycle_cancel_wait_seconds,
    )
    start = WithStartWorkflowOperation(
        ProjectWorkflow.run,
        ProjectInput(project=project),
        id=project_workflow_id(project),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(PROJECT_NAME, project)]),
        static_summary=f"Deployments of {project}, one at a time",
    )
    try:
        handle = await asyncio.wait_for(
            client.start_update_with_start_workflow(
                ProjectWorkflow.lifecycle,
                request,
                start_workflow_operation=start,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            ),
            settings.lifecycle_accept_seconds,
        )
        return await handle.result()
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise UnansweredError(
            f"no worker took up the {action.value} of {project} within "
            f"{settings.lifecycle_accept_seconds:g} s (is a worker polling the queue "
            f"{settings.task_queue}?); it may still be done once one does"
        ) from None
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise LifecycleError(
            cause.message if isinstance(cause, ApplicationError) else str(cause)
        ) from None
