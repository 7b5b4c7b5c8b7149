"""Cancel at any phase: the deployment stops within seconds, compensation leaves the
previous release serving, and visitors never see anything else."""

import asyncio
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import Layout
from slipway.phases import Phase, Status
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from tests.helpers import (
    Watcher,
    ancient_stuck,
    broken_static,
    deploy,
    deploy_and_wait,
    make_site,
    outcome,
    row,
    started,
    wait_for,
)
from tests.running import RunningWorker


def _in_phase(engine: sa.Engine, deployment_id: str, phase: Phase, key: str = "") -> bool:
    view = queries.get_deployment(engine, deployment_id)
    return bool(view and view.phase is phase and (not key or view.metadata.get(key)))


async def test_cancel_during_copying_files(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    old, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "v1", "old"), project
    )
    assert failure is None
    async with Watcher(settings, project) as watcher:
        new = await deploy(client, settings, make_site(tmp_path / "v2", "new", 40000), project)
        await wait_for(
            "copying to start",
            lambda: _in_phase(engine, new, Phase.COPYING_FILES),
            timeout=120,
        )
        assert await api.cancel(client, engine, new) == "cancelling"
        failure = await outcome(client, new)
        await asyncio.sleep(1.0)
    assert failure is not None and "cancel" in failure.lower()
    view = row(engine, new)
    assert view.status is Status.CANCELLED
    assert view.metadata["failedPhase"] == "copying_files"
    assert view.metadata["error"] == "cancelled by request"
    copied = view.metadata.get("filesCopied", 0)
    assert isinstance(copied, int) and copied < 40001, "copying ran to its end: not prompt"
    assert not (Layout(settings.home).work(new) / "copy.json").exists()
    assert watcher.saw_only("old"), watcher.answers[-3:]
    assert Layout(settings.home).current(project).readlink().name == old


async def test_cancel_during_health_check(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    old, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "v1", "old"), project
    )
    assert failure is None
    broken = broken_static(settings, 120.0)
    async with RunningWorker(client, broken), Watcher(settings, project) as watcher:
        new = await deploy(client, broken, make_site(tmp_path / "v2", "new"), project)
        await wait_for(
            "health_check", lambda: _in_phase(engine, new, Phase.HEALTH_CHECK), timeout=60
        )
        await api.cancel(client, engine, new)
        failure = await outcome(client, new)
        await asyncio.sleep(1.5)
    assert failure is not None
    view = row(engine, new)
    assert view.status is Status.CANCELLED
    assert view.metadata["failedPhase"] == "health_check"
    assert watcher.saw_only("old"), watcher.answers[-3:]
    layout = Layout(settings.home)
    assert layout.current(project).readlink().name == old
    assert new not in layout.route(project).read_text()


async def test_cancel_a_queued_deployment(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    running = await deploy(client, settings, make_site(tmp_path / "a", "running", 4000), project)
    await wait_for("the first to run", lambda: started(engine, running))
    queued = await deploy(client, settings, make_site(tmp_path / "b", "queued"), project)
    await wait_for("the queued row", lambda: queries.get_deployment(engine, queued) is not None)
    assert "queue" in await api.cancel(client, engine, queued)
    assert await outcome(client, running) is None
    view = row(engine, queued)
    assert view.status is Status.CANCELLED
    logged = queries.get_logs(engine, queued)
    assert [e.phase for e in logged] == ["queued", "failed", "failed"]
    assert logged[-1].message == "Cancelled: cancelled by request before it started"


async def test_a_cancel_when_its_workflow_ended_or_nothing_was_to_start_it(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    """A deployment whose workflow ended without recording its end is the reconciler's to
    record: a cancel says so. One with no workflow (never started, or gone with Temporal's
    retention) whose project's queue is not running will never run: a cancel records it
    cancelled."""
    ghost = settings.model_copy(update={"server": f"ghost{uuid.uuid4().hex[:6]}"})
    waiting = await deploy(client, ghost, make_site(tmp_path / "s", "never"), project)
    await wait_for("the row", lambda: queries.get_deployment(engine, waiting) is not None)
    await client.get_workflow_handle(deployment_workflow_id(waiting)).terminate("test over")
    with pytest.raises(api.DeploymentError, match="terminated"):
        await api.cancel(client, engine, waiting)
    assert row(engine, waiting).status is Status.QUEUED

    with ancient_stuck(engine, ["queued"]) as [orphan]:
        assert "nothing was to start it" in await api.cancel(client, engine, orphan)
        view = row(engine, orphan)
        assert view.status is Status.CANCELLED
        assert view.metadata["error"].startswith("cancelled by request before it started")
