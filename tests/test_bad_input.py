"""Bad input fails once, with a message a person can act on, and loses nothing deployed (the
hostile uploads are in test_hostile_uploads)."""

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client, WorkflowFailureError

from slipway import queries
from slipway.models import DeploymentInput
from slipway.names import InvalidNameError
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from tests.helpers import make_site, outcome, row
from tests.running import RunningWorker
from workflows.deployment import DeploymentWorkflow


async def test_missing_upload_fails_once(
    client: Client, settings: Settings, engine: sa.Engine, worker: RunningWorker, project: str
) -> None:
    deployment_id = str(uuid.uuid4())
    await client.start_workflow(
        DeploymentWorkflow.run,
        DeploymentInput(
            deployment_id=deployment_id,
            project=project,
            upload_id="0" * 32,
            host_queue=settings.host_task_queue,
        ),
        id=deployment_workflow_id(deployment_id),
        task_queue=settings.task_queue,
    )
    failure = await outcome(client, deployment_id)
    assert failure is not None and "not in the upload store" in failure
    assert row(engine, deployment_id).metadata["attempt"] == 1


@pytest.mark.parametrize("name", ["UPPER", "-dash", "a_b", "x" * 64, "../etc", "a.b", ""])
async def test_invalid_project_name_is_refused_before_anything(
    name: str, client: Client, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidNameError, match="invalid project name"):
        await api.start_deployment(client, settings, make_site(tmp_path, "x"), name)


async def test_invalid_project_name_is_refused_by_the_workflow(
    client: Client, settings: Settings, engine: sa.Engine, worker: RunningWorker
) -> None:
    deployment_id = str(uuid.uuid4())
    handle = await client.start_workflow(
        DeploymentWorkflow.run,
        DeploymentInput(
            deployment_id=deployment_id,
            project="../../etc",
            upload_id="0" * 32,
            host_queue=settings.host_task_queue,
        ),
        id=deployment_workflow_id(deployment_id),
        task_queue=settings.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert "invalid project name" in str(failed.value.cause)
    assert queries.get_deployment(engine, deployment_id) is None
