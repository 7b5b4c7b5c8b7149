"""Handing deployments to their project's serializer, by workflow and signal name, so any
Temporal client (the CLI, the API, the reconciler) can do it without the workflow code."""

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from slipway.models import DeploymentInput, DeploymentView, Mode, ProjectInput
from slipway.search_attributes import PROJECT_NAME
from slipway.workflow_ids import project_workflow_id

PROJECT_WORKFLOW = "ProjectWorkflow"
ENQUEUE_SIGNAL = "enqueue"


async def submit(client: Client, task_queue: str, deployment: DeploymentInput) -> str:
    """Signal-with-start the project's serializer: the deployment runs when no other of the
    project does, unless a newer one supersedes it first. Returns the deployment id."""
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


def continuation(
    view: DeploymentView, template: DeploymentInput, mode: Mode, reason: str, next_round: bool
) -> DeploymentInput:
    """A new run of a recorded deployment (resumed, or abandoned as orphaned), rebuilt from
    its row, on the server it was recorded on; `template` supplies the timeouts (and the
    server, for a row that does not name one)."""
    meta = view.metadata
    release = str(meta.get("release") or view.id)
    recorded = Mode(str(meta.get("mode", Mode.DEPLOY.value)))
    return template.model_copy(
        update={
            "deployment_id": view.id,
            "project": view.project,
            "upload_id": str(meta.get("uploadId", "")),
            "mode": recorded if mode is Mode.DEPLOY else mode,
            "release_id": release if release != view.id else None,
            "round": int(str(meta.get("round", 0))) + (1 if next_round else 0),
            "source_commit": str(meta["sourceCommit"]) if "sourceCommit" in meta else None,
            "source": view.source,
            "reason": reason,
            "host_queue": str(meta.get("hostQueue") or template.host_queue),
            "server": str(meta.get("server") or template.server),
            "orphaned_in": view.phase if mode is Mode.ABANDON else None,
        }
    )
