"""Stopping, starting, restarting and deleting projects on the real Docker Engine, Traefik,
Caddy, PostgreSQL and Temporal: a stopped project answers 503 and the monitor leaves it
alone, a restart loses no request, and a delete leaves nothing of the project behind (in
Docker, under the home, in any table) and is refused while a deployment runs unless it may
cancel it (a stop, start or restart is refused meanwhile)."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from activities.adapters.docker import LABEL_PROJECT
from activities.adapters.traefik import STATE_HEADER
from activities.reconcile import work_deployments
from activities.upkeep import cleanup
from slipway import lifecycle as states
from slipway import monitoring, project_events, queries
from slipway.lifecycle import ProjectNotFoundError
from slipway.models import CleanupReport, GitSource, LifecycleAction
from slipway.phases import Status
from slipway.schedules import reconcile_input
from slipway.settings import Settings
from slipway.tables import metadata as schema
from starter import api, project_env
from starter.lifecycle import LifecycleError, change
from tests.git_server import make_repo
from tests.helpers import (
    Watcher,
    deploy,
    deploy_and_wait,
    fetch,
    make_site,
    outcome,
    row,
    wait_for,
)
from tests.running import RunningWorker
from tests.test_cli import slipway as on_the_server
from tests.test_container_deployments import app
from tests.test_monitor import _pass
from tests.test_remote_cli import Remote, remote  # noqa: F401 (a fixture used below)

STOP = LifecycleAction.STOP
START = LifecycleAction.START
RESTART = LifecycleAction.RESTART
DELETE = LifecycleAction.DELETE


def _containers(docker_client: docker.DockerClient, project: str) -> list[Any]:
    return list(
        docker_client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project}"})
    )


async def test_app_stops_starts_and_restarts_without_a_failed_request(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    first, failure = await deploy_and_wait(client, settings, app(tmp_path / "v1", "v1"), project)
    assert failure is None
    [before] = _containers(docker_client, project)
    assert before.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

    async with Watcher(settings, project) as watcher:
        done = await change(client, settings, engine, project, RESTART)
        await asyncio.sleep(0.5)
    assert done.state == "running"
    assert watcher.answers and all(status == 200 for status, _ in watcher.answers), (
        "a request failed during the restart"
    )
    [after] = _containers(docker_client, project)
    assert after.id != before.id, "the restart made no new container"
    assert "busybox app v1" in fetch(settings, project).text

    done = await change(client, settings, engine, project, STOP)
    assert done.state == "stopped"
    answer = fetch(settings, project)
    assert answer.status_code == 503
    assert answer.headers[STATE_HEADER] == "stopped"
    after.reload()
    assert after.status == "exited"
    assert states.state_of(engine, project) == "stopped"

    cleanup_now(settings, engine, docker_client)
    after.reload()
    assert after.status == "exited", "a reconcile removed a stopped project's container"
    assert fetch(settings, project).status_code == 503

    report = await _pass(client, settings)
    assert report.checked[project] == "stopped"
    assert project not in report.restarted
    # (Other tests' broken projects may raise alerts in the same pass: none is this one's.)
    assert not {a.id for a in monitoring.list_alerts(engine, project)} & set(report.alerts)
    after.reload()
    assert after.status == "exited", "the monitor started a stopped project"
    assert monitoring.health_of(engine, project).status == "stopped"

    done = await change(client, settings, engine, project, START)
    assert done.state == "running"
    answer = fetch(settings, project)
    assert answer.status_code == 200 and "busybox app v1" in answer.text
    assert STATE_HEADER not in answer.headers
    kinds = [e.kind for e in project_events.events_of(engine, project)]
    assert kinds[:3] == ["start", "stop", "restart"]

    await change(client, settings, engine, project, STOP)
    second, failure = await deploy_and_wait(client, settings, app(tmp_path / "v2", "v2"), project)
    assert failure is None, "a deployment to a stopped project failed"
    assert "busybox app v2" in fetch(settings, project).text
    assert states.state_of(engine, project) == "running"
    assert project_events.events_of(engine, project)[0].metadata["deployment"] == second
    assert row(engine, first).status is Status.ACTIVE


async def test_static_site_stops_starts_and_restarts(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    with pytest.raises(ProjectNotFoundError):
        await change(client, settings, engine, project, STOP)
    _, failure = await deploy_and_wait(client, settings, make_site(tmp_path / "s", "one"), project)
    assert failure is None
    async with Watcher(settings, project) as watcher:
        done = await change(client, settings, engine, project, RESTART)
    assert "nothing runs" in done.message
    assert watcher.saw_only("one")
    await change(client, settings, engine, project, STOP)
    assert fetch(settings, project).status_code == 503
    await change(client, settings, engine, project, STOP)  # already stopped: still stopped
    assert fetch(settings, project).status_code == 503
    await change(client, settings, engine, project, START)
    assert fetch(settings, project).text.strip() == "<h1>one</h1>"


async def test_a_project_named_after_another_s_candidate_or_stopped_route_is_routed_apart(
    tmp_path: Path,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
) -> None:
    """Traefik drops every router and service of a name two routes define: names a project
    may take (`<p>-candidate`, `<p>-stopped`) must never be `<p>`'s candidate or stopped ones."""
    others = [f"{project}-candidate", f"{project}-stopped"]
    for name in [project, *others]:
        _, failure = await deploy_and_wait(client, settings, make_site(tmp_path / name, name), name)
        assert failure is None, failure
    _, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "again", "again"), project
    )
    assert failure is None, failure  # proven on its candidate route
    await change(client, settings, engine, project, STOP)
    assert fetch(settings, project).status_code == 503
    for name in others:
        assert fetch(settings, name).text.strip() == f"<h1>{name}</h1>"
    await change(client, settings, engine, project, START)
    assert fetch(settings, project).text.strip() == "<h1>again</h1>"


def cleanup_now(
    settings: Settings, engine: sa.Engine, docker_client: docker.DockerClient
) -> CleanupReport:
    """A reconcile pass's cleanup of this server, as its `cleanup_host` activity does it (the
    pass's other half, resolving orphaned workflows, is not about what a project leaves)."""
    waiting = queries.in_progress(engine, timedelta(0))
    records = cleanup.Records(
        histories=lambda names: queries.histories(engine, names),
        deployments=lambda names: work_deployments(engine, names),
        waiting=waiting,
    )
    report = cleanup.clean(settings.layout, reconcile_input(settings), records, lambda: None)
    report.containers, report.images = cleanup.sweep(
        docker_client, settings.layout, {v.id for v in waiting}, lambda: None
    )
    return report


def _rows_of(engine: sa.Engine, project_id: int, deployment_ids: list[str]) -> dict[str, int]:
    """How many rows of every table still name the project or its deployments."""
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for table in schema.sorted_tables:
            columns = table.c
            if "project_id" in columns:
                where = columns.project_id == project_id
            elif "deployment_id" in columns:
                where = columns.deployment_id.in_(deployment_ids)
            elif table.name == "projects":
                where = columns.id == project_id
            else:
                continue
            count = conn.execute(sa.select(sa.func.count()).select_from(table).where(where))
            found[table.name] = int(count.scalar_one())
    return found


def _left_on_disk(home: Path, names: list[str]) -> list[str]:
    """Every path under the home whose name holds one of `names`."""
    return [
        str(path)
        for path in home.rglob("*")
        if any(name in path.name for name in names)
        and "postgres" not in path.parts  # the database's own files are PostgreSQL's
    ]


async def test_delete_leaves_nothing_behind(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    ids = []
    for version in ("v1", "v2"):
        deployment_id, failure = await deploy_and_wait(
            client, settings, app(tmp_path / version, version), project
        )
        assert failure is None
        ids.append(deployment_id)
    repo = make_repo(tmp_path / "git", "site")
    repo.commit({"index.html": "<h1>from git</h1>\n"})
    from_git = await api.start_deployment(
        client, settings, None, project, git=GitSource(url=f"file://{repo.bare}")
    )
    assert await outcome(client, from_git) is None
    ids.append(from_git)
    assert settings.layout.mirror(project).is_dir()
    await change(client, settings, engine, project, STOP)
    project_env.change(engine, settings, project, {"MODE": "goes-too"})
    with engine.connect() as conn:
        project_id = conn.execute(
            sa.text("SELECT id FROM projects WHERE name = :n"), {"n": project}
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO alerts (project_id, kind, episode, message) "
                "VALUES (:p, 'down', :e, 'down')"
            ),
            {"p": project_id, "e": f"{project}:test"},
        )
        conn.execute(
            sa.text("INSERT INTO domains (name, project_id) VALUES (:d, :p)"),
            {"d": f"{project}.example.com", "p": project_id},
        )
        conn.commit()
    uploads = states.inventory(engine, project).upload_ids
    assert uploads and all(counted for counted in _rows_of(engine, project_id, ids).values())
    assert _left_on_disk(settings.home, [project, *ids, *uploads])

    done = await change(client, settings, engine, project, DELETE)
    assert done.state == "deleted"

    assert _containers(docker_client, project) == []
    assert docker_client.images.list(filters={"label": f"{LABEL_PROJECT}={project}"}) == []
    assert _left_on_disk(settings.home, [project, *ids, *uploads]) == []
    assert not any(_rows_of(engine, project_id, ids).values())
    assert fetch(settings, project).status_code == 404

    cleaned = cleanup_now(settings, engine, docker_client)
    mentions = [
        *cleaned.releases,
        *cleaned.work_dirs,
        *cleaned.routes,
        *cleaned.uploads,
        *cleaned.containers,
        *cleaned.images,
    ]
    assert [m for m in mentions if any(n in m for n in [project, *ids, *uploads])] == []

    with pytest.raises(ProjectNotFoundError):
        await change(client, settings, engine, project, DELETE)


SLOW = "sleep 300"


async def test_delete_is_refused_while_deploying_unless_it_may_cancel(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    source = app(tmp_path / "slow", "slow")
    dockerfile = source / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("CMD ", f"RUN {SLOW}\nCMD ", 1))
    deployment_id = await deploy(client, settings, source, project)
    await wait_for(
        "the build to run",
        lambda: (
            (view := queries.get_deployment(engine, deployment_id)) is not None
            and view.phase.value == "building"
        ),
    )

    with pytest.raises(LifecycleError, match="--cancel"):
        await change(client, settings, engine, project, DELETE)
    for action in (STOP, START, RESTART):
        with pytest.raises(LifecycleError, match="cancel them"):
            await change(client, settings, engine, project, action)
    assert row(engine, deployment_id).status is Status.BUILDING

    done = await change(client, settings, engine, project, DELETE, cancel=True)
    assert done.state == "deleted"
    assert queries.get_deployment(engine, deployment_id) is None
    assert _containers(docker_client, project) == []
    assert _left_on_disk(settings.home, [project, deployment_id]) == []


async def test_a_delete_whose_other_server_has_no_worker_is_refused_naming_it(
    client: Client, settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    """The project once deployed through another server's queue whose worker is gone: its
    delete removes what it can, then is refused within the pickup time, naming that queue,
    instead of waiting for that server; with its worker back, the delete finishes."""
    gone = settings.model_copy(update={"task_queue": f"{settings.task_queue}-gone"})
    async with RunningWorker(client, gone):
        _, failure = await deploy_and_wait(client, gone, make_site(tmp_path / "a", "a"), project)
        assert failure is None
    quick = settings.model_copy(update={"lifecycle_pickup_seconds": 2.0})
    async with RunningWorker(client, quick):
        with pytest.raises(LifecycleError, match=rf"queue {gone.host_task_queue} took up"):
            await change(client, quick, engine, project, DELETE)
        assert queries.project_history(engine, project), "its rows stay until it is done"
        async with RunningWorker(client, gone, host_only=True):
            done = await change(client, quick, engine, project, DELETE)
    assert done.state == "deleted"


async def test_lifecycle_through_both_clis_and_the_api(
    remote: Remote,  # noqa: F811 (the fixture)
    settings: Settings,
    project: str,
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path / "site", "cli")
    code, _, err = await on_the_server(
        settings, "deploy", str(site), "--project", project, "--wait"
    )
    assert code == 0, err

    code, out, err = await remote.slipway("stop", project)
    assert code == 0 and "(stopped)" in out, err
    assert fetch(settings, project).status_code == 503
    code, out, err = await on_the_server(settings, "start", project)
    assert code == 0 and "(running)" in out, err
    assert fetch(settings, project).status_code == 200
    code, out, err = await remote.slipway("restart", project)
    assert code == 0 and "(running)" in out, err

    code, _, err = await remote.slipway("delete", project)
    assert code == 2 and "--yes" in err
    code, out, err = await remote.slipway("delete", project, "--yes")
    assert code == 0 and "(deleted)" in out, err
    assert fetch(settings, project).status_code == 404
    code, _, err = await on_the_server(settings, "delete", project, "--yes")
    assert code == 2 and "no project" in err
    code, _, err = await remote.slipway("stop", project)
    assert code == 2 and "no project" in err
