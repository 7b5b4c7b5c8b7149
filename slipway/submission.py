"""Handing deployments to their project's serializer, by workflow and signal name, so any
Temporal client (the CLI, the API, the reconciler) can do it without the workflow code."""

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from slipway import tracing
from slipway.models import DeploymentInput, DeploymentView, PreviewRemoval, ProjectInput
from slipway.phases import Mode
from slipway.search_attributes import PROJECT_NAME, deployment_at_start
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id

PROJECT_WORKFLOW = "ProjectWorkflow"
DEPLOYMENT_WORKFLOW = "DeploymentWorkflow"
ENQUEUE_SIGNAL = "enqueue"
REMOVE_PREVIEW_SIGNAL = "remove_preview"


async def submit(client: Client, task_queue: str, deployment: DeploymentInput) -> str:
    """Signal-with-start the project's serializer: the deployment runs when no other of the
    project does, unless a newer one supersedes it first. Returns the deployment id."""
    with tracing.submitting(deployment.deployment_id, deployment.project):
        await client.start_workflow(
            PROJECT_WORKFLOW,
            ProjectInput(project=deployment.project),
            id=project_workflow_id(deployment.project),
            task_queue=task_queue,
            start_signal=ENQUEUE_SIGNAL,
            start_signal_args=[deployment],
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(PROJECT_NAME, deployment.project)]
            ),
            static_summary=f"Deployments of {deployment.project}, one at a time",
        )
    return deployment.deployment_id


async def start_directly(client: Client, deployment: DeploymentInput) -> str:
    """Start the deployment's own workflow at once, on its server's queue, as its project's
    serializer would: the deployment holds its project's turn (`slipway.turns`), so nothing
    else of the project runs. Returns the deployment id."""
    with tracing.submitting(deployment.deployment_id, deployment.project):
        await client.start_workflow(
            DEPLOYMENT_WORKFLOW,
            deployment,
            id=deployment_workflow_id(deployment.deployment_id),
            task_queue=deployment.host_queue,
            search_attributes=deployment_at_start(deployment.project),
            static_summary=f"Deploy {deployment.project} ({deployment.deployment_id[:8]})",
        )
    return deployment.deployment_id


async def remove_preview(client: Client, task_queue: str, removal: PreviewRemoval) -> None:
    """Signal-with-start the preview's own serializer to remove it, between two of its
    deployments."""
    await client.start_workflow(
        PROJECT_WORKFLOW,
        ProjectInput(project=removal.site),
        id=project_workflow_id(removal.site),
        task_queue=task_queue,
        start_signal=REMOVE_PREVIEW_SIGNAL,
        start_signal_args=[removal],
        search_attributes=TypedSearchAttributes([SearchAttributePair(PROJECT_NAME, removal.site)]),
        static_summary=f"Deployments of {removal.site}, one at a time",
    )


def continuation(
    view: DeploymentView, template: DeploymentInput, mode: Mode, reason: str, next_round: bool
) -> DeploymentInput:
    """A new run of a recorded deployment (resumed, or abandoned as orphaned), rebuilt from
    its row, on the server it was recorded on, with the environment version it was given;
    `template` supplies the timeouts (and the
    server, for a row that does not name one)."""
    meta = view.details
    recorded = meta.mode or Mode.DEPLOY
    return DeploymentInput(
        **template.model_dump(
            exclude={
                "deployment_id",
                "project",
                "upload_id",
                "mode",
                "release_id",
                "round",
                "source_commit",
                "source",
                "reason",
                "host_queue",
                "server",
                "orphaned_in",
                "env_version",
            }
        ),
        deployment_id=view.id,
        project=view.project,
        upload_id=meta.upload_id or "",
        mode=recorded if mode is Mode.DEPLOY else mode,
        release_id=view.release if view.release != view.id else None,
        round=(meta.round or 0) + (1 if next_round else 0),
        source_commit=meta.source_commit,
        source=view.source,
        reason=reason,
        host_queue=meta.host_queue or template.host_queue,
        server=meta.server or template.server,
        orphaned_in=view.phase if mode is Mode.ABANDON else None,
        env_version=meta.env_version,
    )
