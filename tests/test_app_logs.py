"""An app's own output, on the real Docker Engine: its last lines and its lines as it prints
them, through the Python API and the HTTP API, secrets masked; and a container that dies
while starting leaves its last lines in the deployment's failure."""

import asyncio
import uuid
from pathlib import Path

import docker
import httpx
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from slipway.settings import Settings
from starter.applogs import app_logs, follow_app_logs
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.apps import SERVE, write_busybox_app
from tests.helpers import deploy_and_wait, make_site, row
from tests.running import RunningWorker

FAST = '[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\npath = "/"\n'
TICKS = "(i=0; while true; i=$((i+1)); do echo tick $i; sleep 0.3; done) & "


def chatty(root: Path) -> Path:
    """An app that says what its KEY is when it starts, then ticks while it serves."""
    command = f'echo "started with KEY=$KEY"; {TICKS}{SERVE}'
    return write_busybox_app(root, config=FAST, command=command)


async def test_an_apps_lines_are_read_and_followed_with_its_secrets_masked(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    _, failure = await deploy_and_wait(
        client, settings, chatty(tmp_path / "app"), project, env={"KEY": secret}
    )
    assert failure is None
    lines = await asyncio.to_thread(app_logs, settings, engine, project, 20)
    assert "started with KEY=***" in lines
    assert all(secret not in line for line in lines)

    ticks: list[str] = []
    async for line in follow_app_logs(settings, engine, project):
        ticks += [line] if line.startswith("tick ") else []
        if len(ticks) >= 2:
            break
    first, second = (int(tick.split()[1]) for tick in ticks)
    assert second == first + 1, "lines arrive as the app prints them"

    token = uuid.uuid4().hex
    app = create_app(settings, ApiSettings(token=SecretStr(token)), client=client, engine=engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        answer = await http.get(f"/api/projects/{project}/logs", params={"since": "1h"})
        assert answer.status_code == 200, answer.text
        assert "started with KEY=***" in answer.json()
        assert secret not in answer.text
        assert (await http.get("/api/projects/no-such-app/logs")).status_code == 404


async def test_a_static_site_has_no_app_logs(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    _, failure = await deploy_and_wait(client, settings, make_site(tmp_path, "static"), project)
    assert failure is None
    try:
        await asyncio.to_thread(app_logs, settings, engine, project)
    except LookupError as err:
        assert "no serving container" in str(err)
    else:
        raise AssertionError("a static site has no container to read")


async def test_a_container_that_dies_while_starting_leaves_its_last_lines(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    command = 'echo "cannot find my config"; echo "giving up with KEY=$KEY"; exit 3'
    root = write_busybox_app(tmp_path / "dies", config=FAST, command=command)
    deployment_id, failure = await deploy_and_wait(
        client, settings, root, project, env={"KEY": "hidden-value"}
    )
    assert failure is not None
    error = str(row(engine, deployment_id).metadata["error"])
    assert "cannot find my config" in error
    assert "giving up with KEY=***" in error and "hidden-value" not in error
