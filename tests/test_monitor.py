"""Health monitoring and auto-heal on the real Docker Engine and Traefik: restarts within an
interval, one alert per restart loop (delivered to a webhook), an alert for a site whose
files vanish, and a release rolled back when it fails inside its bake window."""

import asyncio
import shutil
import uuid
from pathlib import Path

import docker
import sqlalchemy as sa
from temporalio.client import Client

from slipway import monitoring, queries
from slipway.layout import Layout
from slipway.models import MonitorReport
from slipway.phases import Status
from slipway.schedules import ensure_monitor_schedule, monitor_input
from slipway.settings import Settings
from slipway.workflow_ids import monitor_schedule_id
from tests.apps import write_busybox_app
from tests.helpers import Watcher, deploy_and_wait, fetch, make_site, row, wait_for
from tests.receiver import Receiver
from tests.running import RunningWorker
from tests.test_container_deployments import _ours
from workflows.monitor import MonitorWorkflow

HEALTH = (
    '[health]\ninterval = 0.5\nretries = 2\nstart_period = 0\ncommand = "test -f /tmp/healthy"\n'
)
SERVE = "exec /bin/httpd -f -p 127.0.0.1:$PORT -h /www"


def app(root: Path, version: str, before: str) -> Path:
    """A busybox app that is healthy while /tmp/healthy exists; `before` (ending with `;` or
    `&`) runs first."""
    return write_busybox_app(
        root,
        version=version,
        config=HEALTH,
        run=["mkdir -p /tmp"],
        command=f'sh -c "{before} {SERVE}"',
    )


def _started_at(docker_client: docker.DockerClient, container_id: str) -> str:
    return str(docker_client.containers.get(container_id).attrs["State"]["StartedAt"])


def _health(docker_client: docker.DockerClient, container_id: str) -> str:
    state = docker_client.containers.get(container_id).attrs["State"]
    return str(state.get("Health", {}).get("Status"))


async def _pass(client: Client, settings: Settings) -> MonitorReport:
    return await client.execute_workflow(
        MonitorWorkflow.run,
        monitor_input(settings),
        id=f"monitor-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )


async def test_unhealthy_container_is_restarted_within_one_interval(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    deployment_id, failure = await deploy_and_wait(
        client, settings, app(tmp_path / "v1", "v1", "touch /tmp/healthy;"), project
    )
    assert failure is None
    container_id = str(row(engine, deployment_id).metadata["containerId"])
    before = _started_at(docker_client, container_id)
    docker_client.containers.get(container_id).exec_run(["rm", "/tmp/healthy"])
    await wait_for("unhealthy", lambda: _health(docker_client, container_id) == "unhealthy")

    watcher = settings.model_copy(
        update={"server": f"m{uuid.uuid4().hex[:8]}", "monitor_interval_seconds": 2.0}
    )
    async with RunningWorker(client, watcher, host_only=True):
        await ensure_monitor_schedule(client, watcher)
        try:
            await wait_for(
                "a restart", lambda: _started_at(docker_client, container_id) != before, 15
            )
        finally:
            await client.get_schedule_handle(monitor_schedule_id(watcher.server)).delete()
    health = monitoring.health_of(engine, project)
    assert health.restarts_in_window == 1
    messages = [e.message for e in queries.get_logs(engine, deployment_id)]
    assert any(m.startswith("Monitor restarted the unhealthy container") for m in messages)


async def test_restart_loop_raises_one_alert_and_the_webhook_gets_it(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    receiver: Receiver,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    first_start_only = "[ -f /tmp/started ] || touch /tmp/healthy; touch /tmp/started;"
    deployment_id, failure = await deploy_and_wait(
        client, settings, app(tmp_path / "v1", "v1", first_start_only), project
    )
    assert failure is None
    container_id = str(row(engine, deployment_id).metadata["containerId"])
    docker_client.containers.get(container_id).exec_run(["rm", "/tmp/healthy"])
    alerting = settings.model_copy(update={"alert_webhook_url": receiver.url})
    for _ in range(30):
        await wait_for("unhealthy", lambda: _health(docker_client, container_id) == "unhealthy")
        await _pass(client, alerting)
        if monitoring.health_of(engine, project).healing_paused:
            break
    paused_at = _started_at(docker_client, container_id)
    for _ in range(3):
        await _pass(client, alerting)
        await asyncio.sleep(1.0)
    found = monitoring.list_alerts(engine, project)
    assert [a.kind for a in found] == ["restart-loop"]
    ours = [body["id"] for body in receiver.bodies if body["project"] == project]
    assert ours == [found[0].id]
    assert found[0].delivered_at is not None
    health = monitoring.health_of(engine, project)
    assert health.healing_paused and health.status == "down"
    assert health.restarts_in_window == settings.restart_limit
    assert _started_at(docker_client, container_id) == paused_at, "restarted while paused"

    monitoring.heal(engine, project)
    assert not monitoring.health_of(engine, project).healing_paused
    assert monitoring.list_alerts(engine, project)[0].resolved_at is not None


async def test_static_site_whose_files_vanish_raises_one_alert(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    deployment_id, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "s", "here today"), project
    )
    assert failure is None
    assert (await _pass(client, settings)).checked[project] == "healthy"
    release = Layout(settings.home).release(project, deployment_id)
    for child in release.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for _ in range(4):
        await _pass(client, settings)
    found = monitoring.list_alerts(engine, project)
    assert [a.kind for a in found] == ["down"]
    assert "is down" in found[0].message
    assert monitoring.health_of(engine, project).status == "down"


async def test_a_pass_that_finds_nothing_new_moves_only_the_check_time(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    _, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "s", "steady"), project
    )
    assert failure is None
    assert (await _pass(client, settings)).checked[project] == "healthy"
    first = monitoring.health_of(engine, project)
    assert (await _pass(client, settings)).checked[project] == "healthy"
    second = monitoring.health_of(engine, project)
    assert first.last_check and second.last_check
    assert second.last_check > first.last_check
    assert second.model_dump(exclude={"last_check"}) == first.model_dump(exclude={"last_check"})


async def test_release_failing_in_its_bake_window_is_rolled_back(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    old, failure = await deploy_and_wait(
        client, settings, app(tmp_path / "v1", "v1", "touch /tmp/healthy;"), project
    )
    assert failure is None
    baking = settings.model_copy(update={"bake_seconds": 20.0})
    sours = "touch /tmp/healthy; (sleep 3; rm /tmp/healthy) &"
    async with Watcher(settings, project) as watcher:
        new, failure = await deploy_and_wait(
            client, baking, app(tmp_path / "v2", "v2", sours), project
        )
        await asyncio.sleep(1.0)
    assert failure is not None and "bake window" in failure
    view = row(engine, new)
    assert view.status is Status.FAILED
    assert view.metadata["failedPhase"] == "active"
    assert "rolled back" in str(view.metadata["error"])
    failed = [(s, b[:60]) for s, b in watcher.answers if s != 200]
    assert not failed, failed[:5]
    assert "busybox app v1" in watcher.answers[-1][1]
    assert "busybox app v1" in fetch(settings, project).text
    assert _ours(docker_client, new)[0] == 0
    assert _ours(docker_client, old)[0] == 1


async def test_restarts_docker_makes_on_its_own_count_towards_a_restart_loop(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    crash_after_first = "test -f /tmp/started && exit 1; touch /tmp/started /tmp/healthy;"
    deployment_id, failure = await deploy_and_wait(
        client, settings, app(tmp_path / "v1", "v1", crash_after_first), project
    )
    assert failure is None
    container = docker_client.containers.get(
        str(row(engine, deployment_id).metadata["containerId"])
    )
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    await _pass(client, settings)  # the first look: Docker has restarted it 0 times
    container.exec_run(["sh", "-c", "kill 1"])

    def restarted_by_docker() -> bool:
        container.reload()
        return int(container.attrs["RestartCount"]) >= settings.restart_limit

    await wait_for("Docker to restart it", restarted_by_docker, 60)
    await _pass(client, settings)
    health = monitoring.health_of(engine, project)
    assert health.restarts_in_window >= settings.restart_limit
    assert health.healing_paused
    assert [a.kind for a in monitoring.list_alerts(engine, project)] == ["restart-loop"]
