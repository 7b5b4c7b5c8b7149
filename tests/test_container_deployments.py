"""Apps with a Dockerfile, deployed end to end on the real Docker Engine behind Traefik:
built with a streamed log, started beside the old version, switched without a failed
request, and never leaving a second image or container behind."""

import asyncio
import base64
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from activities.adapters.beat import Beat
from activities.adapters.docker import LABEL_DEPLOYMENT, image_tag
from activities.adapters.hosts import hosts_for
from activities.adapters.ports import recorded
from activities.adapters.traefik import (
    Target,
    candidate_token,
    install_route,
    public_target,
    render_route,
)
from activities.adapters.upstreams import read_upstream, restore_upstreams, write_upstream
from activities.adapters.web import wait_for_route
from slipway import queries
from slipway.phases import Status
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.stack.binaries import binary
from slipway.static_server import (
    APP_HEADER,
    CANDIDATE_HEADER,
    PROJECT_HEADER,
    PROXY_HEADER,
    SLOT_HEADER,
    UPSTREAM_HEADER,
    app_projects,
    proxy_token,
)
from starter import api
from tests.apps import write_busybox_app
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    Watcher,
    deploy,
    deploy_and_wait,
    fetch,
    make_site,
    outcome,
    row,
    transitions,
    workflows_of,
)
from tests.running import RunningWorker, worker_process

FAST = '[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\npath = "{path}"\n'


def app(root: Path, version: str, *, path: str = "/", command: str | None = None) -> Path:
    """A busybox httpd app answering `busybox app <version>`, checked on `path`."""
    extra = {"command": command} if command else {}
    return write_busybox_app(root, version=version, config=FAST.format(path=path), **extra)


def _ours(docker_client: docker.DockerClient, deployment_id: str) -> tuple[int, int]:
    """How many containers and images belong to the deployment."""
    label = {"label": f"{LABEL_DEPLOYMENT}={deployment_id}"}
    return len(docker_client.containers.list(all=True, filters=label)), len(
        docker_client.images.list(filters=label)
    )


async def test_app_deploys_end_to_end_with_its_build_log(
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
        client, settings, app(tmp_path / "v1", "v1"), project
    )
    assert failure is None
    assert "busybox app v1" in fetch(settings, project).text
    view = row(engine, deployment_id)
    meta = view.metadata
    assert (meta["detectedType"], meta["deploymentType"]) == ("dockerfile", "container")
    assert str(meta["imageId"]).startswith("sha256:")
    container = docker_client.containers.get(str(meta["containerId"]))
    assert container.labels[LABEL_DEPLOYMENT] == deployment_id
    assert container.image.tags == [image_tag(project, deployment_id)]
    assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    entries = queries.get_logs(engine, deployment_id)
    skipped = [e.phase for e in entries if e.metadata.get("skipped")]
    assert skipped == ["copying_files", "creating_symlinks"]
    build = [e.message for e in entries if e.phase == "building" and "transition" not in e.message]
    steps = [line for line in build if line.startswith("Step ")]
    assert steps and steps == sorted(steps, key=lambda line: int(line.split()[1].split("/")[0]))
    assert build[-1].startswith("Successfully tagged")
    assert _ours(docker_client, deployment_id) == (1, 1)


async def test_new_version_replaces_the_old_without_a_failed_request(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    old, failure = await deploy_and_wait(client, settings, app(tmp_path / "v1", "v1"), project)
    assert failure is None
    async with Watcher(settings, project) as watcher:
        new, failure = await deploy_and_wait(client, settings, app(tmp_path / "v2", "v2"), project)
        await asyncio.sleep(1.0)
    assert failure is None
    assert all(status == 200 for status, _ in watcher.answers), "a request failed"
    bodies = [body for _, body in watcher.answers]
    assert "v1" in bodies[0] and "v2" in bodies[-1]
    switched = next(i for i, body in enumerate(bodies) if "v2" in body)
    assert all("v2" in body for body in bodies[switched:]), "traffic went back and forth"
    assert _ours(docker_client, old)[0] == 0, "the old container was not removed"
    messages = [e.message for e in queries.get_logs(engine, new)]
    assert any(m.startswith("Previous container slipway-") for m in messages)


async def test_a_redeploy_moves_the_upstream_file_and_leaves_the_route_alone(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    """An app redeploy writes no route: Traefik sends the project to the static server,
    which proxies to the container its upstream files name, and the new container takes over
    by a rename of those files. A route written when Traefik sent requests to the container
    itself keeps serving, and the next deployment moves it behind the static server."""
    layout = settings.layout
    old, failure = await deploy_and_wait(client, settings, app(tmp_path / "v1", "v1"), project)
    assert failure is None
    route = layout.route(project)
    written = route.stat()
    new, failure = await deploy_and_wait(client, settings, app(tmp_path / "v2", "v2"), project)
    assert failure is None
    assert (route.stat().st_ino, route.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    port = recorded(layout, new)
    assert port is not None and port != recorded(layout, old)
    for slot in ("current", "next"):
        assert read_upstream(layout, project, slot) == f"127.0.0.1:{port}"
    answer = await asyncio.to_thread(fetch, settings, project)
    assert "busybox app v2" in answer.text
    assert answer.headers[UPSTREAM_HEADER] == str(port)

    direct = Target(url=f"http://127.0.0.1:{port}")
    hosts = hosts_for(settings, project)
    earlier, version = render_route(project, hosts, direct, direct, load_key(settings))
    install_route(layout, project, earlier)
    assert await asyncio.to_thread(
        wait_for_route, settings.proxy_url, hosts.base, version, 15.0, Beat()
    )
    for slot in ("current", "next"):
        layout.upstream(project, slot).unlink()
    async with Watcher(settings, project) as watcher:
        _, failure = await deploy_and_wait(client, settings, app(tmp_path / "v3", "v3"), project)
        await asyncio.sleep(1.0)
    assert failure is None
    assert all(status == 200 for status, _ in watcher.answers), "a request failed"
    assert "v2" in watcher.answers[0][1] and "v3" in watcher.answers[-1][1]
    public = public_target(layout, project)
    assert public is not None and public.via and public.lane == "current"


async def test_a_project_switches_between_a_static_site_and_an_app(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    """A static site, then an app, then a static site again on one project, each served
    in turn; a visitor naming the other kind's slot in a header reaches nothing else (Traefik
    removes that header)."""
    site = make_site(tmp_path / "s1", "static one")
    _, failure = await deploy_and_wait(client, settings, site, project)
    assert failure is None
    _, failure = await deploy_and_wait(client, settings, app(tmp_path / "a1", "a1"), project)
    assert failure is None
    answer = await asyncio.to_thread(fetch, settings, project)
    assert "busybox app a1" in answer.text and UPSTREAM_HEADER in answer.headers
    site = make_site(tmp_path / "s2", "static two")
    _, failure = await deploy_and_wait(client, settings, site, project)
    assert failure is None
    for headers in ({}, {APP_HEADER: "current"}, {APP_HEADER: "next"}):
        answer = await asyncio.to_thread(
            httpx.get,
            f"{settings.proxy_url}/",
            headers={"Host": settings.project_host(project), **headers},
            timeout=5.0,
        )
        assert "static two" in answer.text and UPSTREAM_HEADER not in answer.headers, headers


def _straight_to_the_static_server(
    settings: Settings, project: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    """A request sent to Caddy itself, as an app sharing its network could send it."""
    return httpx.get(
        f"{settings.static_url}{path}",
        headers={"Host": settings.project_host(project), PROJECT_HEADER: project, **headers},
        timeout=5.0,
    )


async def test_only_traefik_reaches_the_static_server_and_apps_never_see_its_token(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    """Apps share a network with the static server in the compose stack: a request sent to
    it straight, naming any project and slot, reaches neither a release nor a container.
    Traefik's requests carry the token it requires, which it removes before an app sees
    them, with the candidate's and the lane's."""
    token = {PROXY_HEADER: proxy_token(load_key(settings))}
    _, failure = await deploy_and_wait(client, settings, make_site(tmp_path / "s", "s"), project)
    assert failure is None
    ask = _straight_to_the_static_server
    for slot in ("current", "next"):
        assert (
            await asyncio.to_thread(ask, settings, project, "/", {SLOT_HEADER: slot})
        ).status_code == 404
        served = await asyncio.to_thread(ask, settings, project, "/", {SLOT_HEADER: slot, **token})
        assert served.status_code == 200 and "<h1>s</h1>" in served.text, "the token is all"

    root = app(tmp_path / "a", "a")
    cgi = root / "www" / "cgi-bin" / "env"
    cgi.parent.mkdir()
    cgi.write_text("#!/bin/sh\necho Content-Type: text/plain\necho\nenv\n")
    cgi.chmod(0o755)
    _, failure = await deploy_and_wait(client, settings, root, project)
    assert failure is None
    seen = (await asyncio.to_thread(fetch, settings, project, "/cgi-bin/env")).text
    assert f"HTTP_X_SLIPWAY_PROJECT={project}" in seen, seen
    proven = await asyncio.to_thread(
        httpx.get,
        f"{settings.candidate_url}/cgi-bin/env",
        headers={
            "Host": settings.project_host(project),
            CANDIDATE_HEADER: candidate_token(load_key(settings)),
        },
        timeout=5.0,
    )
    assert "HTTP_X_SLIPWAY_APP=next" in proven.text, proven.text
    for answer in (seen, proven.text):
        for header in ("PROXY", "CANDIDATE", "LANE"):
            assert f"HTTP_X_SLIPWAY_{header}" not in answer, answer
        assert token[PROXY_HEADER] not in answer
    for slot in ("current", "next"):
        assert (
            await asyncio.to_thread(ask, settings, project, "/", {APP_HEADER: slot})
        ).status_code == 404
        served = await asyncio.to_thread(ask, settings, project, "/", {APP_HEADER: slot, **token})
        assert "busybox app a" in served.text, "the token is all"


def test_compensation_puts_back_what_a_deployment_wrote_in_the_upstream_files(
    settings: Settings, project: str
) -> None:
    """A deployment's upstream write keeps what it replaced (a retry gets the same back),
    and compensation puts it back only while the file still holds what the deployment wrote.
    The project's first write gives the running Caddy its routes to the files."""
    layout = settings.layout
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    try:
        assert write_upstream(settings, project, "next", "127.0.0.1:20001", first) is None
        assert write_upstream(settings, project, "current", "127.0.0.1:20001", first) is None
        assert project in app_projects(layout)
        for _ in range(2):
            before = write_upstream(settings, project, "next", "127.0.0.1:20002", second)
            assert before == "127.0.0.1:20001"
        restore_upstreams(layout, project, second)
        assert read_upstream(layout, project, "next") == "127.0.0.1:20001"
        assert read_upstream(layout, project, "current") == "127.0.0.1:20001"
        write_upstream(settings, project, "next", "127.0.0.1:20002", second)
        write_upstream(settings, project, "next", "127.0.0.1:20003", third)
        restore_upstreams(layout, project, second)
        assert read_upstream(layout, project, "next") == "127.0.0.1:20003"
    finally:
        for deployment in (first, second, third):
            shutil.rmtree(layout.work(deployment), ignore_errors=True)
        shutil.rmtree(layout.upstream(project, "next").parent, ignore_errors=True)


async def test_unhealthy_version_fails_and_the_old_keeps_serving(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    old, failure = await deploy_and_wait(client, settings, app(tmp_path / "v1", "v1"), project)
    assert failure is None
    async with Watcher(settings, project) as watcher:
        new, failure = await deploy_and_wait(
            client, settings, app(tmp_path / "v2", "v2", path="/missing"), project
        )
        await asyncio.sleep(1.0)
    assert failure is not None
    view = row(engine, new)
    assert view.status is Status.FAILED
    assert view.metadata["failedPhase"] == "health_check"
    assert watcher.saw_only("busybox app v1"), watcher.answers[-3:]
    assert _ours(docker_client, new)[0] == 0, "the failed version's container is left"
    assert _ours(docker_client, old)[0] == 1


async def test_a_first_app_deployment_that_fails_leaves_its_names_answering_404(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    """A project's first deployment routes its public names to the `current` slot before
    proving the release: while nothing is there, the static server answers 404 (not a proxy
    error), and a failed proof takes the route away again."""
    layout = settings.layout
    async with Watcher(settings, project) as watcher:
        _, failure = await deploy_and_wait(
            client, settings, app(tmp_path / "v1", "v1", path="/missing"), project
        )
    assert failure is not None
    assert watcher.answers and {status for status, _ in watcher.answers} == {404}
    assert not layout.route(project).exists()
    assert fetch(settings, project).status_code == 404


@pytest.mark.parametrize("activity", ["build", "update_routes"])
async def test_worker_killed_during_build_or_container_start_leaves_one_of_each(
    activity: str,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
    containers: None,
    docker_client: docker.DockerClient,
) -> None:
    marker = tmp_path / "held"
    chaos = worker_process(settings, "chaos", "tests.chaos_worker", activity, str(marker))
    try:
        deployment_id = await deploy(client, settings, app(tmp_path / "v1", "v1"), project)
        for _ in range(1200):
            if marker.exists() or not chaos.alive():
                break
            await asyncio.sleep(0.05)
        assert marker.exists(), chaos.tail()
    finally:
        chaos.kill()
    survivor = worker_process(settings, "survivor")
    try:
        assert await outcome(client, deployment_id) is None
    finally:
        survivor.stop()
    assert _ours(docker_client, deployment_id) == (1, 1)
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    assert "busybox app v1" in fetch(settings, project).text


async def test_environment_secrets_reach_the_container_and_nothing_else(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    command = (
        'sh -c "echo token=$APP_TOKEN > /www/env.txt; '
        'exec /bin/httpd -f -p 127.0.0.1:$PORT -h /www"'
    )
    deployment_id = await deploy(
        client,
        settings,
        app(tmp_path / "v1", "v1", command=command),
        project,
        env={"APP_TOKEN": secret},
    )
    assert await outcome(client, deployment_id) is None
    assert fetch(settings, project, "/env.txt").text.strip() == f"token={secret}"

    with engine.connect() as conn:
        for table in ("projects", "deployments", "deployment_logs"):
            dump = conn.execute(sa.text(f"SELECT string_agg(t::text, ' ') FROM {table} t"))
            assert secret not in str(dump.scalar())
    for workflow_id in await workflows_of(client, project, [deployment_id]):
        shown = await asyncio.create_subprocess_exec(
            binary("temporal"),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            settings.temporal_address,
            "--output",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await shown.communicate()
        assert shown.returncode == 0, out.decode()
        payloads = b" ".join(_payload_data(json.loads(out)))
        assert b"APP_TOKEN" not in payloads + out, "only the environment's version travels"
        assert secret.encode() not in payloads + out


def _payload_data(node: object) -> Iterator[bytes]:
    """Every payload's data in a `temporal workflow show --output json` document, decoded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                yield base64.b64decode(value)
            else:
                yield from _payload_data(value)
    elif isinstance(node, list):
        for item in node:
            yield from _payload_data(item)


async def test_reconciler_removes_what_no_release_needs(
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
    for version in ("v1", "v2", "v3"):
        deployment_id, failure = await deploy_and_wait(
            client, settings, app(tmp_path / version, version), project
        )
        assert failure is None
        ids.append(deployment_id)
    keep_one = settings.model_copy(update={"keep_releases": 1})
    report = await api.reconcile_now(client, keep_one)
    assert image_tag(project, ids[0]) in report.cleanup.images
    assert image_tag(project, ids[1]) in report.cleanup.images
    assert _ours(docker_client, ids[2]) == (1, 1), "the serving container and its image stay"
    assert "busybox app v3" in fetch(settings, project).text
