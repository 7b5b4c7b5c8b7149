"""The reconciler: orphaned deployments resolved within one interval, cleanup done once
however many reconcilers run, and releases kept for rollback."""

import asyncio
import os
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import ReconcileReport
from slipway.phases import Phase, Status
from slipway.schedules import ensure_reconcile_schedule, reconcile_input
from slipway.settings import Settings
from slipway.stack.binaries import binary
from slipway.workflow_ids import deployment_workflow_id, reconcile_schedule_id
from starter import api
from tests.helpers import deploy, deploy_and_wait, fetch, make_site, outcome, row, wait_for
from tests.running import RunningWorker
from workflows.reconcile import ReconcileWorkflow


async def _terminate(settings: Settings, workflow_id: str) -> None:
    """Terminate a workflow the way an operator does, with the Temporal CLI."""
    process = await asyncio.create_subprocess_exec(
        binary("temporal"),
        "workflow",
        "terminate",
        "--workflow-id",
        workflow_id,
        "--reason",
        "operator pressed terminate",
        "--address",
        settings.temporal_address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()


def _copying(engine: sa.Engine, deployment_id: str) -> bool:
    view = queries.get_deployment(engine, deployment_id)
    return view is not None and view.phase is Phase.COPYING_FILES


async def test_terminated_workflow_is_resolved_within_one_interval(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    old, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "a", "old"), project
    )
    assert failure is None
    new = await deploy(client, settings, make_site(tmp_path / "b", "new", 20000), project)
    await wait_for("copying", lambda: _copying(engine, new), timeout=120)
    await _terminate(settings, deployment_workflow_id(new))
    assert row(engine, new).status is Status.DEPLOYING, "the row is left in progress: an orphan"

    # A server of its own for this reconciler, so its Schedule is this test's alone.
    fast = settings.model_copy(
        update={
            "server": f"r{uuid.uuid4().hex[:8]}",
            "reconcile_interval_seconds": 2.0,
            "orphan_grace_seconds": 0.5,
        }
    )
    async with RunningWorker(client, fast, host_only=True):
        await ensure_reconcile_schedule(client, fast)
        try:
            await wait_for(
                "the orphan to be resolved", lambda: row(engine, new).status is Status.FAILED, 30
            )
        finally:
            await client.get_schedule_handle(reconcile_schedule_id(fast.server)).delete()
    view = row(engine, new)
    assert str(view.metadata["error"]) == "orphaned: its workflow is terminated"
    assert view.metadata["failedPhase"] == "copying_files"
    assert Layout(settings.home).current(project).readlink().name == old
    assert "old" in fetch(settings, project).text


def _junk_release(layout: Layout, project: str) -> str:
    release_id = str(uuid.uuid4())
    marker = layout.release(project, release_id) / RELEASE_MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text(release_id)
    return release_id


async def test_two_reconcilers_at_once_clean_up_once(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    await deploy_and_wait(client, settings, make_site(tmp_path / "a", "kept"), project)
    layout = Layout(settings.home)
    junk = {f"{project}/{_junk_release(layout, project)}" for _ in range(6)}
    stale_work = layout.work(str(uuid.uuid4()))
    stale_work.mkdir(parents=True)
    long_ago = time.time() - 7200
    os.utime(stale_work, (long_ago, long_ago))

    inp = reconcile_input(settings)
    runs = [
        client.execute_workflow(
            ReconcileWorkflow.run,
            inp,
            id=f"reconcile-{n}-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
        for n in range(2)
    ]
    reports: list[ReconcileReport] = list(await asyncio.gather(*runs))
    removed = [r for report in reports for r in report.cleanup.releases if r.startswith(project)]
    assert sorted(removed) == sorted(junk), "each junk release removed exactly once"
    works = [w for report in reports for w in report.cleanup.work_dirs]
    assert works.count(stale_work.name) == 1
    assert not stale_work.exists()
    assert "kept" in fetch(settings, project).text

    both = await asyncio.gather(
        api.reconcile_now(client, settings), api.reconcile_now(client, settings)
    )
    assert both[0] == both[1], "two requests at once share one run"


async def _scheduled_pass(client: Client, settings: Settings) -> ReconcileReport:
    """A pass as the Schedule starts it."""
    return await client.execute_workflow(
        ReconcileWorkflow.run,
        reconcile_input(settings),
        id=f"reconcile-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )


async def test_scheduled_cleanup_looks_at_projects_whose_deployments_changed(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    await deploy_and_wait(client, settings, make_site(tmp_path / "a", "first"), project)
    assert project in (await _scheduled_pass(client, settings)).cleanup.looked_at
    for _ in range(60):  # until the deployment is older than the watermark's margin
        if project not in (await _scheduled_pass(client, settings)).cleanup.looked_at:
            break
        await asyncio.sleep(1)
    else:
        raise AssertionError("an unchanged project is looked at by every pass")
    layout = Layout(settings.home)
    junk = _junk_release(layout, project)
    await deploy_and_wait(client, settings, make_site(tmp_path / "b", "second"), project)
    report = (await _scheduled_pass(client, settings)).cleanup
    assert project in report.looked_at
    assert f"{project}/{junk}" in report.releases
    every = (await api.reconcile_now(client, settings)).cleanup
    assert project in every.looked_at


async def test_cleanup_keeps_current_and_the_newest_releases(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    ids = []
    for n in range(4):
        deployment_id, failure = await deploy_and_wait(
            client, settings, make_site(tmp_path / f"v{n}", f"version {n}"), project
        )
        assert failure is None
        ids.append(deployment_id)
    keep_two = settings.model_copy(update={"keep_releases": 2})
    report = await api.reconcile_now(client, keep_two)
    removed = {r for r in report.cleanup.releases if r.startswith(project)}
    assert removed == {f"{project}/{ids[0]}", f"{project}/{ids[1]}"}
    kept = sorted(p.name for p in Layout(settings.home).releases(project).iterdir())
    assert kept == sorted(ids[2:])
    assert "version 3" in fetch(settings, project).text

    back = await api.rollback(client, settings, engine, project)
    assert (await outcome(client, back)) is None
    assert "version 2" in fetch(settings, project).text
