"""A static site through every phase, on real Temporal, PostgreSQL, Traefik and Caddy."""

from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import Layout
from slipway.models import DeploymentProgress
from slipway.phases import Phase, Status
from slipway.search_attributes import DEPLOYMENT_PHASE, PROJECT_NAME
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    Watcher,
    deploy_and_wait,
    fetch,
    make_site,
    row,
    transitions,
)
from tests.inotify import watching
from tests.running import RunningWorker
from workflows.deployment import DeploymentWorkflow


async def test_phase_progression(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path / "site", "hello v1")
    deployment_id, failure = await deploy_and_wait(client, settings, site, project)
    assert failure is None
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    view = row(engine, deployment_id)
    assert (view.status, view.phase, view.progress) == (Status.ACTIVE, Phase.ACTIVE, 100)
    assert view.phase_updated_at >= view.created_at
    answer = fetch(settings, project)
    assert answer.status_code == 200
    assert "hello v1" in answer.text

    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    progress = await handle.query(DeploymentWorkflow.progress)
    assert isinstance(progress, DeploymentProgress)
    assert (progress.phase, progress.progress) == (Phase.ACTIVE, 100)
    described = await handle.describe()
    assert described.typed_search_attributes.get(DEPLOYMENT_PHASE) == "active"
    assert described.typed_search_attributes.get(PROJECT_NAME) == project


async def test_a_new_project_is_routed_once_and_answers_404_until_its_switch(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    """Traefik reads every route again on each write into its directory: a project's first
    deployment writes nothing there (the shared route serves its base name), its own route
    is written once, public routers included, and its switch only moves `current`. Until
    then a visitor gets a 404, as before the project existed."""
    layout = settings.layout
    layout.route_records.mkdir(parents=True, exist_ok=True)
    name = layout.route(project).name
    with watching(layout.routes) as served, watching(layout.route_records) as records:
        async with Watcher(settings, project) as watcher:
            _, failure = await deploy_and_wait(
                client, settings, make_site(tmp_path / "site", "routed once"), project
            )
        events = [event for event in served.events() if event[1] == name]
        written = [event for event in records.events() if event[1] == name]
    assert failure is None
    assert events == []
    assert written == [("moved_to", name)]
    statuses = [status for status, _ in watcher.answers]
    served_from = statuses.index(200) if 200 in statuses else len(statuses)
    assert set(statuses[:served_from]) <= {404} and set(statuses[served_from:]) == {200}, statuses
    assert "routed once" in fetch(settings, project).text


async def test_redeploy_switches_release_and_keeps_the_old_one(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    first, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "v1", "version one"), project
    )
    assert failure is None
    second, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "v2", "version two"), project
    )
    assert failure is None
    assert "version two" in fetch(settings, project).text
    layout = Layout(settings.home)
    assert layout.current(project).resolve() == layout.release(project, second).resolve()
    assert layout.release(project, first).is_dir()
    assert row(engine, second).metadata["previousRelease"] == first


async def test_metadata_capture(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path / "site" / "dist", "built", extra_files=12)
    deployment_id, failure = await deploy_and_wait(
        client, settings, site.parent, project, source_commit="0123abcd"
    )
    assert failure is None
    meta = row(engine, deployment_id).metadata
    assert meta["sourceCommit"] == "0123abcd"
    assert len(str(meta["uploadId"])) == 32
    assert len(str(meta["contentDigest"])) == 64
    assert meta["detectedType"] == "static"
    assert meta["deploymentType"] == "static"
    assert meta["filesCopied"] == meta["totalFiles"] == 13
    assert meta["url"] == f"http://{settings.project_host(project)}:{settings.http_port}/"
    assert "completedAt" in meta
    assert "error" not in meta
    assert "built" in fetch(settings, project).text


async def test_transition_log_rows(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    deployment_id, _ = await deploy_and_wait(
        client, settings, make_site(tmp_path / "s", "logged"), project
    )
    entries = queries.get_logs(engine, deployment_id)
    phases = [e.phase for e in entries]
    assert phases == [p.value for p in Phase if p is not Phase.FAILED]
    stamps = [e.timestamp for e in entries]
    assert stamps == sorted(stamps)
    assert all(e.level == "info" for e in entries)
    copying = next(e for e in entries if e.phase == "copying_files")
    assert copying.metadata["detectedType"] == "static"
