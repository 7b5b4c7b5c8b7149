"""Image builds of real apps, end to end on the real Docker Engine: base images pulled from a
registry served on loopback (with credentials when it asks), RUN steps on the build network,
build arguments and targets, failed builds that leave nothing behind, cancellation inside a
long RUN step, progress within building, and static sites built by a Dockerfile."""

import base64
import functools
import http.client
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import sqlalchemy as sa
from docker.errors import NotFound
from pydantic import SecretStr
from temporalio.client import Client

from activities.adapters.appconfig import AppConfigError, parse_app_config
from activities.adapters.docker import LABEL_DEPLOYMENT, image_tag
from activities.adapters.images import STAGE_TAG, remove_image
from activities.adapters.pulls import base_images
from activities.phases.building import build_progress
from slipway import queries
from slipway.phases import PROGRESS, Phase, Status
from slipway.project_sources import ProjectSource, set_source, source_of
from slipway.secrets import load_key, seal
from slipway.settings import Settings
from starter import api
from tests.apps import SERVE, write_busybox_app
from tests.components import free_port, require
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    deploy,
    deploy_and_wait,
    fetch,
    outcome,
    row,
    transitions,
    wait_for,
)
from tests.running import RunningWorker

FAST = "[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\n"
"""Health settings that make a test app's verdict come in about a second."""

SLEEP = 60
"""The RUN step a cancellation interrupts would take this many seconds."""


def _messages(engine: sa.Engine, deployment_id: str) -> list[str]:
    return [entry.message for entry in queries.get_logs(engine, deployment_id)]


def _app(root: Path, dockerfile: str, config: str = FAST, version: str = "v1") -> Path:
    """A busybox app (bin/, www/) whose Dockerfile is `dockerfile`."""
    write_busybox_app(root, version=version, config=config)
    (root / "Dockerfile").write_text(dockerfile)
    return root


def _made(lines: list[str]) -> tuple[list[str], list[str]]:
    """The images a build committed (not those it took from the cache) and the containers
    its steps ran in, from its log."""
    committed: list[str] = []
    ran: list[str] = []
    cached = False
    for line in lines:
        if (image := re.fullmatch(r"\s*---> ([0-9a-f]{12})", line)) and not cached:
            committed.append(image[1])
        if container := re.fullmatch(r"\s*---> Running in (\w+)", line):
            ran.append(container[1])
        cached = line.strip() == "---> Using cache"
    return committed, ran


def _gone(docker_client: docker.DockerClient, image_or_container: str) -> bool:
    for kind in (docker_client.images, docker_client.containers):
        try:
            kind.get(image_or_container)
            return False
        except NotFound:
            pass
    return True


@pytest.fixture
def images(docker_client: docker.DockerClient, project: str) -> Iterator[None]:
    """Remove the project's containers and every tag of its images (stage tags too)."""
    yield
    label = {"label": f"slipway.project={project}"}
    for container in docker_client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for image in docker_client.images.list(name=f"slipway/{project}"):
        for tag in image.tags:
            remove_image(docker_client, tag)


# A registry on loopback


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, storing in a temp dir; its address
    (the Engine trusts 127.0.0.0/8 registries without TLS)."""
    command = shutil.which("docker-registry")
    require(command is not None, "no docker-registry (apt-get install docker-registry)")
    assert command is not None
    root = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: {address}\n"
    )
    with (root / "registry.log").open("wb") as log:
        process = subprocess.Popen([command, "serve", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(100):
            assert process.poll() is None, (root / "registry.log").read_text()
            try:
                if httpx.get(f"http://{address}/v2/", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def base(docker_client: docker.DockerClient, registry: str, tmp_path: Path) -> Iterator[str]:
    """A busybox image pushed to the registry under a new name and removed here: a build
    that starts FROM it has to pull it. Whatever pulled it is removed again at the end."""
    name = f"base-{uuid.uuid4().hex[:8]}:1"
    reference = f"{registry}/{name}"
    app = write_busybox_app(tmp_path / "base", version=name)  # a layer no build made before
    docker_client.images.build(path=str(app), tag=reference, rm=True)
    pushed = docker_client.images.push(reference)
    assert '"error"' not in pushed, pushed
    docker_client.images.remove(reference)
    yield reference
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.endswith(f"/{name}"):
                docker_client.images.remove(tag)


class _Gate(BaseHTTPRequestHandler):
    """The front door of a private registry: it forwards reads only with the right basic
    credentials, and asks for them otherwise."""

    server: "_GateServer"

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def log_message(self, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        if self.headers.get("Authorization") != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        backend = http.client.HTTPConnection(self.server.backend, timeout=10)
        backend.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():  # Accept comes several times
            if name.lower() != "authorization":
                backend.putheader(name, value)
        backend.endheaders()
        answer = backend.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection"):
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        backend.close()


class _GateServer(ThreadingHTTPServer):
    def __init__(self, backend: str, user: str, password: str) -> None:
        super().__init__(("127.0.0.1", 0), _Gate)
        self.backend = backend
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.expected = f"Basic {token}"


@pytest.fixture
def private_registry(registry: str) -> Iterator[tuple[str, str]]:
    """The registry behind a gate wanting basic credentials: its address and password."""
    password = f"pw-{uuid.uuid4().hex}"
    server = _GateServer(registry, "puller", password)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", password
    finally:
        server.shutdown()
        server.server_close()


async def test_a_missing_base_image_is_pulled_with_its_progress_in_the_log(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    images: None,
    docker_client: docker.DockerClient,
    base: str,
) -> None:
    app = _app(tmp_path / "app", f"FROM {base}\nCOPY www /www\nCMD {SERVE}\n")
    deployment_id, failure = await deploy_and_wait(client, settings, app, project)
    assert failure is None
    assert "busybox app v1" in fetch(settings, project).text
    messages = _messages(engine, deployment_id)
    pulling = messages.index(f"Pulling base image {base}")
    assert pulling < next(i for i, m in enumerate(messages) if m.startswith("Step 1/"))
    assert any(m.endswith(": Pull complete") for m in messages)
    assert any(m.startswith("Status: Downloaded newer image") for m in messages)
    assert not any("Downloading [" in m or "Extracting [" in m for m in messages)


async def test_registry_credentials_of_the_project_then_the_server_never_shown(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
    images: None,
    docker_client: docker.DockerClient,
    registry: str,
    base: str,
    private_registry: tuple[str, str],
) -> None:
    gate, password = private_registry
    base = base.replace(registry, gate)
    app = _app(tmp_path / "app", f"FROM {base}\nCOPY www /www\nCMD {SERVE}\n")
    wrong = json.dumps({gate: {"username": "puller", "password": "wrong-pw-0451"}})
    server = settings.model_copy(update={"registry_auth": SecretStr(wrong)})
    right = json.dumps({f"http://{gate}/": {"username": "puller", "password": password}})
    sealed = seal({"auth": right}, load_key(settings))["auth"]
    domain = settings.project_host(project)
    set_source(engine, project, domain, ProjectSource(sealed_registry_auth=sealed))
    assert source_of(engine, project).sealed_registry_auth == sealed
    async with RunningWorker(client, server):
        good, failure = await deploy_and_wait(client, server, app, project)
        assert failure is None, failure
        pulled = _messages(engine, good)
        assert f"Pulling base image {base} (with credentials)" in pulled
        assert not any("WARNING" in line for line in pulled)  # the gate forwards faithfully
        docker_client.images.remove(base)
        set_source(engine, project, domain, ProjectSource())
        bad, failure = await deploy_and_wait(client, server, app, project)
    assert failure is not None
    assert f"base image {base} could not be pulled: unauthorized" in failure
    for deployment_id in (good, bad):
        recorded = json.dumps(
            [_messages(engine, deployment_id), row(engine, deployment_id).metadata]
        )
        assert password not in recorded and "wrong-pw-0451" not in recorded
    assert "wrong-pw-0451" not in failure


# The build network


@pytest.fixture
def loopback_file(tmp_path: Path) -> Iterator[str]:
    """A URL on loopback serving a file, as a package registry would."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "payload.txt").write_text("fetched-over-loopback\n")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/payload.txt"
    finally:
        server.shutdown()
        server.server_close()


async def test_run_steps_reach_the_network_unless_none_and_a_failed_build_leaves_nothing(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    images: None,
    docker_client: docker.DockerClient,
    loopback_file: str,
) -> None:
    fetch_step = [f"wget -q -O /www/fetched.txt {loopback_file}"]
    app = write_busybox_app(tmp_path / "host", config=FAST, run=fetch_step)
    good, failure = await deploy_and_wait(client, settings, app, project)
    assert failure is None, failure
    assert fetch(settings, project, "/fetched.txt").text == "fetched-over-loopback\n"
    assert "Building with network host" in _messages(engine, good)

    none = FAST + '[build]\nnetwork = "none"\n'
    # Every app's layers are its own, so this build commits (and must remove) images.
    app = write_busybox_app(tmp_path / "none", version="v2", config=none, run=fetch_step)
    bad, failure = await deploy_and_wait(client, settings, app, project)
    assert failure is not None
    assert "returned a non-zero code" in failure and "had no network" in failure
    lines = _messages(engine, bad)
    assert any("can't connect" in line for line in lines)
    committed, ran = _made(lines)
    assert committed and ran, lines
    assert all(_gone(docker_client, made) for made in committed + ran)
    assert row(engine, bad).status is Status.FAILED
    assert fetch(settings, project, "/fetched.txt").status_code == 200

    other = FAST + '[build]\nnetwork = "someone-elses"\n'
    app = write_busybox_app(tmp_path / "other", config=other)
    _, failure = await deploy_and_wait(client, settings, app, project)
    assert failure is not None and 'network = "someone-elses" is not allowed' in failure


async def test_build_arguments_and_target(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    images: None,
) -> None:
    dockerfile = (
        "FROM scratch AS app\nCOPY bin /bin\nCOPY www /www\nARG GREETING=unset\n"
        'RUN echo "$GREETING" > /www/greeting.txt\n'
        f"CMD {SERVE}\n"
        "FROM app AS debug\nRUN echo debug > /www/debug.txt\n"
    )
    config = FAST + '[build]\ntarget = "app"\nargs = { GREETING = "hello from args" }\n'
    deployment_id, failure = await deploy_and_wait(
        client, settings, _app(tmp_path / "app", dockerfile, config), project
    )
    assert failure is None, failure
    assert fetch(settings, project, "/greeting.txt").text == "hello from args\n"
    assert fetch(settings, project, "/debug.txt").status_code == 404
    assert not any("debug" in m for m in _messages(engine, deployment_id) if m.startswith("Step"))


async def test_a_long_run_step_shows_progress_and_a_cancel_stops_it_at_once(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    images: None,
    docker_client: docker.DockerClient,
) -> None:
    app = write_busybox_app(
        tmp_path / "slow", config=FAST, run=[f"echo sleeping && sleep {SLEEP} && echo slept"]
    )
    deployment_id = await deploy(client, settings, app, project)
    await wait_for("the long RUN step", lambda: "sleeping" in _messages(engine, deployment_id))
    step_began = time.monotonic()
    start = PROGRESS[Phase.BUILDING]
    await wait_for(
        "progress within building",
        lambda: row(engine, deployment_id).progress > start,
        timeout=SLEEP / 4,
    )
    view = row(engine, deployment_id)
    assert view.phase is Phase.BUILDING and start < view.progress < PROGRESS[Phase.COPYING_FILES]

    assert await api.cancel(client, engine, deployment_id) == "cancelling"
    failure = await outcome(client, deployment_id)
    assert time.monotonic() - step_began < SLEEP, "the RUN step was not stopped"
    assert failure is not None and "cancel" in failure.lower()
    assert row(engine, deployment_id).status is Status.CANCELLED
    lines = _messages(engine, deployment_id)
    assert "slept" not in lines
    _, ran = _made(lines)
    assert ran and all(_gone(docker_client, container) for container in ran)
    with pytest.raises(NotFound):
        docker_client.images.get(image_tag(project, deployment_id))


# Static sites built by a Dockerfile

STATIC = (
    "FROM scratch AS build\nCOPY bin /bin\nCOPY www /src\n"
    "RUN mkdir -p /out/about && cat /src/index.html > /out/index.html "
    "&& echo built-by-run > /out/about/built.txt\n"
    "FROM scratch\nCOPY --from=build /out /dist\n"
)
ESCAPING = (
    "FROM scratch\nCOPY bin /bin\n"
    "RUN mkdir /dist && echo hi > /dist/index.html && ln -s /etc /dist/etc\n"
)


async def test_a_static_site_built_by_a_dockerfile_is_served_and_an_escaping_link_refused(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    images: None,
    docker_client: docker.DockerClient,
) -> None:
    config = '[static]\nfrom_image = "/dist"\nspa = true\n'
    app = _app(tmp_path / "site", STATIC, config, version="static")
    deployment_id, failure = await deploy_and_wait(client, settings, app, project)
    assert failure is None, failure
    assert "busybox app static" in fetch(settings, project).text
    assert "busybox app static" in fetch(settings, project, "/a/client/route").text, "spa"
    assert fetch(settings, project, "/about/built.txt").text == "built-by-run\n"
    meta = row(engine, deployment_id).metadata
    assert (meta["detectedType"], meta["deploymentType"]) == ("dockerfile-static", "static")
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    label = {"label": f"{LABEL_DEPLOYMENT}={deployment_id}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    tag = image_tag(project, deployment_id)
    assert docker_client.images.get(tag).id == meta["imageId"]  # kept as the build cache
    docker_client.images.get(f"{tag}{STAGE_TAG}1")

    hostile = _app(tmp_path / "hostile", ESCAPING, config, version="hostile")
    refused, failure = await deploy_and_wait(client, settings, hostile, project)
    assert failure is not None and "the files built at /dist were refused" in failure
    assert "etc" in failure
    assert (
        docker_client.containers.list(all=True, filters={"label": f"{LABEL_DEPLOYMENT}={refused}"})
        == []
    )
    with pytest.raises(NotFound):
        docker_client.images.get(image_tag(project, refused))
    assert "busybox app static" in fetch(settings, project).text


# Settings and parsing


def test_base_images_follow_global_args_and_skip_stages() -> None:
    dockerfile = (
        "# syntax comment\nARG NODE=20\nARG REGISTRY\n"
        "FROM --platform=linux/amd64 node:${NODE} AS deps\n"
        "RUN npm ci \\\n  --omit=dev\n"
        "FROM deps AS build\nFROM scratch\nFROM $REGISTRY/base\n"
        "FROM ${MIRROR:-docker.io}/library/busybox:1 AS last\nFROM node:20\n"
    )
    assert base_images(dockerfile, {}) == ["node:20", "docker.io/library/busybox:1"]
    assert base_images(dockerfile, {"NODE": "22", "REGISTRY": "r.example"}) == [
        "node:22",
        "r.example/base",
        "docker.io/library/busybox:1",
        "node:20",
    ]


def test_build_and_static_settings_are_checked() -> None:
    config = parse_app_config(
        '[build]\nnetwork = "host"\ntarget = "app"\nargs = { A = "1" }\n'
        '[static]\nfrom_image = "/app//dist/"\n'
    )
    assert (config.build.network, config.build.target, config.build.args) == (
        "host",
        "app",
        {"A": "1"},
    )
    assert config.static is not None and config.static.from_image == "/app/dist"
    for text, expected in (
        ("[build]\nargs = { A = 1 }", "build.args.A"),
        ('[build]\nargs = { "A-B" = "x" }', "not a build argument name"),
        ('[build]\nnetwork = "a b"', "build.network"),
        ('[static]\nfrom_image = "dist"', "absolute path"),
        ('[static]\nfrom_image = "/a/../etc"', "without '..'"),
        ('[static]\nfrom_image = "/"', "the whole image is not a site"),
        ("[build]\ncache = false", "known: "),
    ):
        with pytest.raises(AppConfigError, match=re.escape(expected)):
            parse_app_config(text)


def test_registry_credentials_setting_never_shows_a_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "SLIPWAY_REGISTRY_AUTH", '{"r.example": {"username": "u", "password": "hunter2-x"}}'
    )
    settings = Settings()
    assert settings.registry_logins["r.example"].password.get_secret_value() == "hunter2-x"
    assert "hunter2-x" not in repr(settings)
    assert settings.environment()["SLIPWAY_REGISTRY_AUTH"].count("hunter2-x") == 1
    monkeypatch.setenv("SLIPWAY_REGISTRY_AUTH", '{"r.example": {"password": "hunter2-x"}}')
    with pytest.raises(ValueError, match="SLIPWAY_REGISTRY_AUTH must be JSON") as caught:
        Settings()
    assert "hunter2-x" not in str(caught.value)


def test_progress_rises_within_building_and_stays_below_the_next_phase() -> None:
    start, after = PROGRESS[Phase.BUILDING], PROGRESS[Phase.COPYING_FILES]
    values = [build_progress(step, 12) for step in range(1, 13)]
    assert values[0] == start and values == sorted(values) and values[-1] < after
