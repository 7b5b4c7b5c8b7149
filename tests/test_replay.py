"""Workflow code stays compatible with the histories of deployments already run: every
recorded history must replay without a non-determinism error."""

from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from tests.helpers import deploy_and_wait, make_site
from tests.running import RunningWorker
from workflows.deployment import DeploymentWorkflow
from workflows.project import ProjectWorkflow
from workflows.reconcile import ReconcileWorkflow

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    """A replayer of every workflow whose histories are recorded."""
    return Replayer(
        workflows=[DeploymentWorkflow, ProjectWorkflow, ReconcileWorkflow],
        data_converter=pydantic_data_converter,
    )


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer().replay_workflow(history)


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES.glob("*.json")}
    assert {
        "deploy-success",
        "deploy-failed-health-check",
        "deploy-rollback",
        "deploy-cancelled",
        "project-running",
        "deploy-container",
        "deploy-promote",
        "deploy-quiet-end",
        "project-preview-removed",
        "reconcile-preview-expiry",
        "project-turn",
        "deploy-direct",
    } <= names


async def test_a_fresh_history_replays(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    deployment_id, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "s", "replayed"), project
    )
    assert failure is None
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    await replayer().replay_workflow(await handle.fetch_history())
