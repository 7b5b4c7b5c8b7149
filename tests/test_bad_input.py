"""Bad input fails once, with a message a person can act on, and loses nothing deployed."""

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client, WorkflowFailureError

from slipway import queries
from slipway.layout import Layout
from slipway.models import DeploymentInput
from slipway.names import InvalidNameError
from slipway.phases import Status
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from tests.helpers import deploy_and_wait, fetch, make_site, outcome, row
from tests.hostile import HOSTILE_TARS, HOSTILE_ZIPS, corrupt_tar
from tests.running import RunningWorker
from workflows.deployment import DeploymentWorkflow

CASES: dict[str, Callable[[Path], Path]] = {**HOSTILE_TARS, **HOSTILE_ZIPS, "corrupt": corrupt_tar}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_hostile_upload_fails_once_and_keeps_serving(
    case: str,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    good, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "good", "safe"), project
    )
    assert failure is None
    suffix = ".zip" if case.startswith("zip") else ".tar.gz"
    archive = CASES[case](tmp_path / f"hostile{suffix}")
    bad, failure = await deploy_and_wait(client, settings, archive, project)
    assert failure is not None and "was refused" in failure
    view = row(engine, bad)
    assert view.status is Status.FAILED
    assert view.metadata["failedPhase"] == "pulling_source"
    assert view.metadata["attempt"] == 1
    assert "was refused" in str(view.metadata["error"])
    layout = Layout(settings.home)
    assert not (layout.work(bad) / "source").exists()
    assert not any(layout.home.parent.rglob("escaped.txt"))
    assert layout.current(project).readlink().name == good
    assert "safe" in fetch(settings, project).text


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
