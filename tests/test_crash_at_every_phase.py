"""SIGKILL the worker at every phase, after the phase's work and before Temporal hears of it:
a new worker completes the deployment, and nothing is there twice."""

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway.layout import Layout
from slipway.phases import Status
from slipway.settings import Settings
from tests.helpers import SUCCESS_TRANSITIONS, deploy, fetch, make_site, outcome, row, transitions
from tests.running import RunningWorker, worker_process

ACTIVITIES = [
    # (queued is recorded by the API before the deployment is handed to Temporal)
    "pull_source",
    "build",
    "copy_files",
    "stage_release",
    "update_routes",
    "health_check",
    "activate",
]


@pytest.mark.parametrize("activity", ACTIVITIES)
async def test_worker_killed_after_each_phase_completes_on_a_new_worker(
    activity: str,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
) -> None:
    old, failure = await _first_release(client, settings, project, tmp_path)
    assert failure is None
    marker = tmp_path / "held"
    chaos = worker_process(settings, "chaos", "tests.chaos_worker", activity, str(marker))
    try:
        deployment_id = await deploy(
            client, settings, make_site(tmp_path / "new", "new release", extra_files=20), project
        )
        for _ in range(1200):
            if marker.exists() or not chaos.alive():
                break
            await asyncio.sleep(0.05)
        assert marker.exists(), f"the chaos worker never reached {activity}:\n{chaos.tail()}"
    finally:
        chaos.kill()

    survivor = worker_process(settings, "survivor")
    try:
        assert await outcome(client, deployment_id) is None
    finally:
        survivor.stop()

    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    assert row(engine, deployment_id).status is Status.ACTIVE
    layout = Layout(settings.home)
    assert sorted(p.name for p in layout.releases(project).iterdir()) == sorted(
        [old, deployment_id]
    )
    routes = layout.route_records
    assert [p.name for p in routes.iterdir() if p.name.startswith(f"{project}.")] == [
        f"{project}.yml"
    ]
    assert "new release" in fetch(settings, project).text


async def _first_release(
    client: Client, settings: Settings, project: str, tmp_path: Path
) -> tuple[str, str | None]:
    async with RunningWorker(client, settings):
        deployment_id = await deploy(client, settings, make_site(tmp_path / "old", "old"), project)
        return deployment_id, await outcome(client, deployment_id)
