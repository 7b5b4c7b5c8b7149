"""The Python API: start a deployment, follow it, read its record.

A service that only has a Temporal client can start `DeploymentWorkflow` itself with a
`DeploymentInput`; these functions add the upload store and the database view on top.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from slipway import records
from slipway.layout import Layout
from slipway.models import DeploymentInput, DeploymentView, LogEntry
from slipway.names import validate_deployment_id, validate_project_name
from slipway.phases import Phase, Status
from slipway.search_attributes import DEPLOYMENT_PHASE, PROJECT_NAME
from slipway.settings import Settings
from starter.uploads import store_upload
from workflows.deployment import DeploymentWorkflow

TERMINAL = frozenset({Status.ACTIVE, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED})


async def start_deployment(
    client: Client,
    settings: Settings,
    path: Path,
    project: str,
    *,
    source_commit: str | None = None,
    deployment_id: str | None = None,
) -> str:
    """Store the upload and start its deployment; return the deployment id. Starting again
    with the same deployment id returns the running one instead of a second."""
    validate_project_name(project)
    deployment_id = validate_deployment_id(deployment_id or str(uuid.uuid4()))
    upload_id = await asyncio.to_thread(store_upload, Layout(settings.home), path)
    deployment = DeploymentInput(
        deployment_id=deployment_id,
        project=project,
        upload_id=upload_id,
        host_queue=settings.host_task_queue,
        source_commit=source_commit,
        source=f"upload {path.name}",
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
    )
    await client.start_workflow(
        DeploymentWorkflow.run,
        deployment,
        id=records.deployment_workflow_id(deployment_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(PROJECT_NAME, project),
                SearchAttributePair(DEPLOYMENT_PHASE, Phase.QUEUED.value),
            ]
        ),
        static_summary=f"Deploy {project} ({deployment_id[:8]})",
        static_details=f"Upload {upload_id} of `{path.name}` to project **{project}** "
        f"at {settings.project_host(project)}",
    )
    return deployment_id


async def workflow_closed(client: Client, deployment_id: str) -> bool:
    """True if the deployment's workflow has ended, however it ended."""
    try:
        described = await client.get_workflow_handle(
            records.deployment_workflow_id(deployment_id)
        ).describe()
    except RPCError:
        return False
    return described.status not in (None, WorkflowExecutionStatus.RUNNING)


async def follow(
    client: Client, engine: sa.Engine, deployment_id: str, interval: float = 0.3
) -> AsyncIterator[DeploymentView | None]:
    """Yield the deployment's row each time it changes, until it ends; None until it exists."""
    last: tuple[str, int] | None = None
    closed_polls = 0
    while True:
        view = await asyncio.to_thread(records.get_deployment, engine, deployment_id)
        key = (view.phase, view.progress) if view else ("", -1)
        if key != last:
            last = key
            yield view
        if view is not None and view.status in TERMINAL:
            return
        if await workflow_closed(client, deployment_id):
            closed_polls += 1
            if closed_polls > 3:
                return
        await asyncio.sleep(interval)


def status(engine: sa.Engine, deployment_id: str) -> DeploymentView | None:
    """The deployment's row, or None if none was recorded."""
    return records.get_deployment(engine, validate_deployment_id(deployment_id))


def logs(engine: sa.Engine, deployment_id: str) -> list[LogEntry]:
    """The deployment's log, oldest first."""
    return records.get_logs(engine, validate_deployment_id(deployment_id))
