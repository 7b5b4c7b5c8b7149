"""Rollback: an instant switch to a kept earlier release, recorded as its own deployment."""

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import Layout
from slipway.phases import Status
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from tests.helpers import SUCCESS_TRANSITIONS, deploy_and_wait, fetch, make_site, outcome, row
from tests.running import RunningWorker


async def test_rollback_to_the_previous_release_and_forward_again(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    first, _ = await deploy_and_wait(client, settings, make_site(tmp_path / "a", "one"), project)
    second, _ = await deploy_and_wait(client, settings, make_site(tmp_path / "b", "two"), project)
    assert "two" in fetch(settings, project).text

    back = await api.rollback(client, settings, engine, project)
    assert await outcome(client, back) is None
    assert "one" in fetch(settings, project).text
    view = row(engine, back)
    assert view.status is Status.ACTIVE
    assert view.metadata["release"] == first
    assert view.metadata["mode"] == "rollback"
    assert view.metadata["previousRelease"] == second
    entries = queries.get_logs(engine, back)
    assert [e.message for e in entries] == SUCCESS_TRANSITIONS
    skipped = [e.phase for e in entries if e.metadata.get("skipped")]
    assert skipped == ["pulling_source", "building", "copying_files"]
    assert sorted(p.name for p in Layout(settings.home).releases(project).iterdir()) == sorted(
        [first, second]
    ), "a rollback copies nothing"

    # In the Temporal UI, a skipped phase's activity names the phase it skips.
    history = await client.get_workflow_handle(deployment_workflow_id(back)).fetch_history()
    summaries = [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "skip_phase"
    ]
    assert summaries == [
        f"skipping {phase}: {project}" for phase in ("pulling_source", "building", "copying_files")
    ]

    forward = await api.rollback(client, settings, engine, project, to=second)
    assert await outcome(client, forward) is None
    assert "two" in fetch(settings, project).text


async def test_rollback_to_a_cleaned_up_release_fails_clearly(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    first, _ = await deploy_and_wait(client, settings, make_site(tmp_path / "a", "one"), project)
    second, _ = await deploy_and_wait(client, settings, make_site(tmp_path / "b", "two"), project)
    shutil.rmtree(Layout(settings.home).release(project, first))

    back = await api.rollback(client, settings, engine, project, to=first)
    failure = await outcome(client, back)
    assert failure is not None and "is gone" in failure
    view = row(engine, back)
    assert view.status is Status.FAILED
    assert view.metadata["failedPhase"] == "creating_symlinks"
    assert f"kept releases: {second}" in str(view.metadata["error"])
    assert "two" in fetch(settings, project).text


async def test_rollback_needs_an_earlier_release(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    await deploy_and_wait(client, settings, make_site(tmp_path / "a", "only"), project)
    with pytest.raises(api.DeploymentError, match="no earlier release"):
        await api.rollback(client, settings, engine, project)
