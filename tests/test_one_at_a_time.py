"""One deployment at a time per project, newest wins: never interleaved, the waiting ones
superseded by a newer arrival."""

import asyncio
import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from slipway import domains, queries, submission, turns
from slipway.models import DeploymentInput, LogEntry
from slipway.phases import Status
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    deploy,
    fetch,
    make_site,
    outcome,
    row,
    started,
    transitions,
    wait_for,
)
from tests.running import RunningWorker


def _span(entries: list[LogEntry]) -> tuple[float, float]:
    stamps = [e.timestamp.timestamp() for e in entries if e.message.startswith("Phase transition")]
    return min(stamps), max(stamps)


async def test_two_deployments_of_a_project_never_interleave(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    first = await deploy(client, settings, make_site(tmp_path / "a", "first", 4000), project)
    await wait_for("the first to run", lambda: started(engine, first))
    second = await deploy(client, settings, make_site(tmp_path / "b", "second"), project)
    assert await outcome(client, first) is None
    assert await outcome(client, second) is None
    a_start, a_end = _span(queries.get_logs(engine, first))
    b_start, b_end = _span(queries.get_logs(engine, second))
    working = [
        e for e in queries.get_logs(engine, second) if e.message.startswith("Phase transition")
    ][1:]
    assert working[0].timestamp.timestamp() >= a_end, "the second started before the first ended"
    assert b_end > a_end and a_start < b_start
    assert "second" in fetch(settings, project).text


async def test_an_idle_project_deploys_without_a_serializer_and_work_meanwhile_waits_its_turn(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    """A deployment of a project with nothing running starts its own workflow at once and
    holds the project's turn; a route refresh asked meanwhile goes to the project's
    serializer, which waits for that deployment to end before it renders the route."""
    first = await deploy(client, settings, make_site(tmp_path / "a", "first", 4000), project)
    await wait_for("the first to run", lambda: started(engine, first))
    serializer = client.get_workflow_handle(project_workflow_id(project))
    with pytest.raises(RPCError) as missing:
        await serializer.describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND, "a serializer for one deployment"
    turn = turns.current(engine, project)
    assert turn is not None and turn.holder == first

    await domains.routes_changed(client, settings.task_queue, project, settings.host_task_queue)
    assert await outcome(client, first) is None
    await wait_for(
        "the refresh",
        lambda: (t := turns.current(engine, project)) is not None and t.holder == turns.SERIALIZER,
    )
    ended = (await client.get_workflow_handle(deployment_workflow_id(first)).describe()).close_time
    scheduled: dict[str, datetime] = {}
    for _ in range(300):
        events = [e async for e in serializer.fetch_history_events()]
        scheduled = {
            e.activity_task_scheduled_event_attributes.activity_type.name: e.event_time.ToDatetime()
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        done = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
        if len(done) == 2:
            break
        await asyncio.sleep(0.1)
    assert list(scheduled) == ["take_turn", "refresh_routes"]
    assert ended is not None and scheduled["refresh_routes"] >= ended.replace(tzinfo=None)

    after = await deploy(client, settings, make_site(tmp_path / "b", "after"), project)
    assert await outcome(client, after) is None
    assert "after" in fetch(settings, project).text


async def test_newest_queued_deployment_supersedes_the_older_waiting_one(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    running = await deploy(client, settings, make_site(tmp_path / "a", "running", 4000), project)
    await wait_for("the first to run", lambda: started(engine, running))
    middle = await deploy(client, settings, make_site(tmp_path / "b", "middle"), project)
    newest = await deploy(client, settings, make_site(tmp_path / "c", "newest"), project)
    assert await outcome(client, running) is None
    assert await outcome(client, newest) is None
    skipped = row(engine, middle)
    assert skipped.status is Status.SUPERSEDED
    assert skipped.metadata["supersededBy"] == newest
    messages = [e.message for e in queries.get_logs(engine, middle)]
    assert messages == ["Phase transition: queued (0%)", f"Superseded by {newest} before it ran"]
    assert row(engine, running).status is Status.ACTIVE
    assert row(engine, newest).status is Status.ACTIVE
    assert "newest" in fetch(settings, project).text


async def test_the_same_deployment_submitted_again_runs_once(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    deployment_id = await deploy(client, settings, make_site(tmp_path / "a", "once"), project)
    assert await outcome(client, deployment_id) is None
    first_run = row(engine, deployment_id)
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    history = await handle.fetch_history()
    deployment = next(
        DeploymentInput.model_validate_json(p.data)
        for e in history.events
        if e.HasField("workflow_execution_started_event_attributes")
        for p in e.workflow_execution_started_event_attributes.input.payloads
    )
    await submission.submit(client, settings.task_queue, deployment)
    again = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    for _ in range(100):
        if (await again.describe()).run_id != history.run_id:
            break
        await asyncio.sleep(0.1)
    await again.result()
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    assert row(engine, deployment_id).updated_at == first_run.updated_at


async def test_a_deployment_whose_workflow_cannot_start_fails_and_the_queue_goes_on(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    """Its id is taken by a workflow already running (as when one id was claimed twice):
    the deployment is recorded failed with the reason, and the project's serializer keeps
    running its next deployments instead of failing."""
    taken = str(uuid.uuid4())
    squatter = await client.start_workflow(
        "NobodyRunsThis",
        id=deployment_workflow_id(taken),
        task_queue=f"{project}-nobody-polls",
    )
    try:
        await deploy(
            client, settings, make_site(tmp_path / "a", "blocked"), project, deployment_id=taken
        )
        await wait_for("the failure", lambda: row(engine, taken).status is Status.FAILED)
        view = row(engine, taken)
        assert "is already running" in str(view.metadata["error"])
        last = queries.get_logs(engine, taken)[-1]
        assert last.message.startswith("Failed: its workflow ") and last.level == "error"

        after = await deploy(client, settings, make_site(tmp_path / "b", "next one"), project)
        assert await outcome(client, after) is None
        assert "next one" in fetch(settings, project).text
        serializer = await client.get_workflow_handle(project_workflow_id(project)).describe()
        assert serializer.status in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.COMPLETED,
        )
    finally:
        await squatter.terminate("test over")
