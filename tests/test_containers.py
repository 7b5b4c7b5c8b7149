"""The Docker side of container deployments, against the real Docker Engine: builds stream
their output in order and are adopted on a retry, a container is started once however often
it is asked for, health decides, and everything is removed again."""

import contextlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import APIError, NotFound

from activities.adapters.appconfig import (
    CONFIG_FILE,
    AppConfig,
    AppConfigError,
    health_test,
    load_app_config,
    parse_app_config,
)
from activities.adapters.container_spec import ContainerSpec, spec_for
from activities.adapters.containers import (
    ContainerConflictError,
    remove_container,
    start_container,
    tail_logs,
    wait_healthy,
)
from activities.adapters.docker import (
    LABEL_DEPLOYMENT,
    LABEL_PORT,
    LABEL_PROJECT,
    container_name,
    image_tag,
    labels_for,
)
from activities.adapters.images import (
    BuildError,
    LayerRemovedError,
    build_image,
    failure_of,
    remove_image,
)
from activities.adapters.ports import allocate_port
from slipway.errors import UnhealthyError
from tests.apps import write_busybox_app

PROJECT = "ctest"
FAST = "[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\n"
"""Health settings that make a test app's verdict come in about a second."""


def nothing() -> None:
    """A `check` that never cancels."""


class Made:
    """What a test builds and runs, removed when it ends: every container labelled with one
    of its deployments, their image tags, and the layers of builds that never got a tag."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.deployments: list[str] = []
        self.layers: list[str] = []

    def deployment(self) -> str:
        deployment_id = str(uuid.uuid4())
        self.deployments.append(deployment_id)
        return deployment_id

    def untagged_build(self, lines: list[str]) -> None:
        """Remember the layers a failed or cancelled build created (cached ones are shared
        with other images and go with them)."""
        cached = False
        for line in lines:
            match = re.fullmatch(r"\s*---> ([0-9a-f]{12})", line)
            if match and not cached:
                self.layers.append(match[1])
            cached = line.strip() == "---> Using cache"

    def clean(self) -> None:
        for deployment_id in self.deployments:
            label = f"{LABEL_DEPLOYMENT}={deployment_id}"
            for container in self.client.containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
        for deployment_id in self.deployments:  # once no container uses them
            remove_image(self.client, image_tag(PROJECT, deployment_id))
        for layer in reversed(self.layers):
            # gone already, or the parent of a tagged image and pruned along with it
            with contextlib.suppress(NotFound, APIError):
                self.client.images.remove(layer)


@pytest.fixture
def made(docker_client: docker.DockerClient) -> Iterator[Made]:
    made = Made(docker_client)
    try:
        yield made
    finally:
        made.clean()


@pytest.fixture(scope="module")
def app_image(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One built busybox app for the container tests; its RUN step proves RUN works with no
    network."""
    made = Made(docker_client)
    context = write_busybox_app(
        tmp_path_factory.mktemp("app"), run=["echo built-by-run > /www/built.txt"]
    )
    tag = image_tag(PROJECT, made.deployment())
    try:
        build_image(docker_client, context, tag, lambda _: None, nothing)
        yield tag
    finally:
        made.clean()


def spec(
    made: Made, image: str, config: str = FAST, env: dict[str, str] | None = None
) -> ContainerSpec:
    deployment_id = made.deployment()
    result = spec_for(
        PROJECT,
        deployment_id,
        allocate_port(set()),
        parse_app_config(config),
        "dockerfile",
        env=env,
    )
    return result.model_copy(update={"image": image})


# Names


def test_names_derive_from_the_deployment() -> None:
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    assert image_tag("shop", one) == f"slipway/shop:{one}"
    assert container_name("shop", one) == f"slipway-shop-{uuid.UUID(one).hex}"
    assert container_name("shop", one) != container_name("shop", two)
    same_prefix = one[:12] + two[12:]
    assert container_name("shop", one) != container_name("shop", same_prefix)
    long = container_name("a" * 63, one)
    assert len(long) <= 63
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", long)
    with pytest.raises(ValueError, match="invalid project name"):
        image_tag("Shop", one)
    with pytest.raises(ValueError, match="invalid deployment id"):
        container_name("shop", "not-a-uuid")


# Building


def test_build_streams_its_output_in_order_and_a_retry_adopts_the_image(
    docker_client: docker.DockerClient, made: Made, tmp_path: Path
) -> None:
    deployment_id = made.deployment()
    tag = image_tag(PROJECT, deployment_id)
    context = write_busybox_app(
        tmp_path / "app",
        run=["echo first-run-line && echo second-run-line && echo on-stderr >&2"],
    )
    lines: list[str] = []
    checks = 0

    def check() -> None:
        nonlocal checks
        checks += 1

    image_id = build_image(
        docker_client, context, tag, lines.append, check, labels=labels_for(PROJECT, deployment_id)
    )

    image = docker_client.images.get(tag)
    assert image_id == image.id
    assert image.labels == {LABEL_PROJECT: PROJECT, LABEL_DEPLOYMENT: deployment_id}
    steps = [int(m[1]) for line in lines if (m := re.match(r"Step (\d+)/\d+ : ", line))]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 5
    assert lines.index("first-run-line") < lines.index("second-run-line")
    assert "on-stderr" in lines  # uncoloured; stdout and stderr are not ordered between them
    assert lines[-1] == f"Successfully tagged {tag}"
    assert all(line.strip() and "\n" not in line and "\x1b" not in line for line in lines)
    assert checks >= len(steps)

    again: list[str] = []
    assert build_image(docker_client, context, tag, again.append, check) == image_id
    assert again == []
    assert docker_client.images.get(tag).attrs["Created"] == image.attrs["Created"]


def test_a_failing_build_says_why_and_leaves_no_image(
    docker_client: docker.DockerClient, made: Made, tmp_path: Path
) -> None:
    tag = image_tag(PROJECT, made.deployment())
    context = write_busybox_app(tmp_path / "app", run=["echo about-to-fail && exit 3"])
    lines: list[str] = []
    with pytest.raises(BuildError, match=r"docker build failed: .*returned a non-zero code: 3"):
        build_image(docker_client, context, tag, lines.append, nothing)
    made.untagged_build(lines)
    assert "about-to-fail" in lines
    with pytest.raises(NotFound):
        docker_client.images.get(tag)

    (context / "Dockerfile").write_text("FROM scratch\nFOO bar\n")
    with pytest.raises(BuildError, match="unknown instruction: FOO"):
        build_image(docker_client, context, tag, lines.append, nothing)
    (context / "Dockerfile").unlink()
    with pytest.raises(BuildError, match="no Dockerfile at the root of the upload"):
        build_image(docker_client, context, tag, lines.append, nothing)


def test_a_layer_removed_under_a_build_is_built_again_not_refused() -> None:
    """Another image's removal can take a cached layer a build stands on (the Engine:
    "unknown parent image ID"): that build is retried, not refused as if its source were
    bad; any other failure is the source's."""
    removed = "failed to register layer: unknown parent image ID sha256:0123abcd"
    assert isinstance(failure_of(removed), LayerRemovedError)
    failed = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert isinstance(failure_of(failed), BuildError)
    assert str(failure_of(failed)) == f"docker build failed: {failed}"


def test_a_cancelled_build_is_abandoned_untagged(
    docker_client: docker.DockerClient, made: Made, tmp_path: Path
) -> None:
    tag = image_tag(PROJECT, made.deployment())
    context = write_busybox_app(tmp_path / "app", run=["echo sleeping && sleep 2 && echo slept"])
    lines: list[str] = []

    class Cancelled(Exception):
        pass

    def check() -> None:
        if "sleeping" in lines:
            raise Cancelled

    with pytest.raises(Cancelled):
        build_image(docker_client, context, tag, lines.append, check)
    made.untagged_build(lines)
    time.sleep(3.5)  # past the RUN step: the Engine would have tagged the image by now
    with pytest.raises(NotFound):
        docker_client.images.get(tag)
    assert "slept" not in lines


# Running


def test_a_container_starts_once_with_least_privilege_and_turns_healthy(
    docker_client: docker.DockerClient, made: Made, app_image: str
) -> None:
    config = 'capabilities = ["NET_BIND_SERVICE"]\n' + FAST
    wanted = spec(made, app_image, config, env={"SECRET_TOKEN": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(wanted) + str(wanted) + wanted.model_dump_json()

    ids: list[str] = []
    threads = [
        threading.Thread(target=lambda: ids.append(start_container(docker_client, wanted)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert start_container(docker_client, wanted) in ids
    assert len(set(ids)) == 1 and len(ids) == 4
    label = f"{LABEL_DEPLOYMENT}={wanted.deployment_id}"
    assert len(docker_client.containers.list(all=True, filters={"label": label})) == 1

    started = time.monotonic()
    wait_healthy(docker_client, ids[0], 20, nothing)
    assert time.monotonic() - started < 10
    base = f"http://127.0.0.1:{wanted.port}"
    assert httpx.get(f"{base}/").text == "<h1>busybox app v1</h1>\n"
    assert httpx.get(f"{base}/built.txt").text == "built-by-run\n"

    attrs = docker_client.containers.get(wanted.name).attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["Labels"] == {
        LABEL_PROJECT: PROJECT,
        LABEL_DEPLOYMENT: wanted.deployment_id,
        LABEL_PORT: str(wanted.port),
    }
    assert f"PORT={wanted.port}" in attrs["Config"]["Env"]
    assert "SECRET_TOKEN=s3cr3t-value" in attrs["Config"]["Env"]
    assert attrs["Config"]["Healthcheck"]["Test"] == wanted.health_test
    assert attrs["Config"]["Healthcheck"]["Interval"] == 500_000_000
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == ["NET_BIND_SERVICE"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Init"] is True
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 1024
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert host["NetworkMode"] == "host"

    docker_client.containers.get(wanted.name).stop(timeout=5)
    assert start_container(docker_client, wanted) == ids[0]  # adopted and started again
    wait_healthy(docker_client, ids[0], 20, nothing)

    elsewhere = wanted.model_copy(update={"port": wanted.port + 1})
    with pytest.raises(ContainerConflictError, match="keep the port"):
        start_container(docker_client, elsewhere)

    started = time.monotonic()
    assert remove_container(docker_client, wanted.name) is True
    assert time.monotonic() - started < 5  # the init passed SIGTERM on; no 10 s kill
    assert remove_container(docker_client, wanted.name) is False
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/")


def test_a_health_check_that_never_passes_fails_with_its_output(
    docker_client: docker.DockerClient, made: Made, app_image: str
) -> None:
    failing = spec(made, app_image, FAST + 'path = "/missing"\n')
    container_id = start_container(docker_client, failing)
    started = time.monotonic()
    with pytest.raises(UnhealthyError, match=r"is unhealthy; last health check exited 1: .*404"):
        wait_healthy(docker_client, container_id, 30, nothing)
    assert time.monotonic() - started < 10

    slow = spec(made, app_image, '[health]\npath = "/missing"\nstart_period = 60\n')
    container_id = start_container(docker_client, slow)
    with pytest.raises(UnhealthyError, match=r"not healthy after 1s \(health: starting\)"):
        wait_healthy(docker_client, container_id, 1, nothing)


def test_a_container_that_exits_fails_at_once_and_its_logs_hide_secrets(
    docker_client: docker.DockerClient, made: Made, tmp_path: Path
) -> None:
    tag = image_tag(PROJECT, made.deployment())
    context = write_busybox_app(tmp_path / "app", command='echo "token is $TOKEN"; exit 3')
    build_image(docker_client, context, tag, lambda _: None, nothing)
    crashing = spec(made, tag, "[health]\ninterval = 0.5\nstart_period = 30\n", {"TOKEN": "tok-42"})
    container_id = start_container(docker_client, crashing)
    started = time.monotonic()
    with pytest.raises(UnhealthyError, match="exited with code 3 while starting"):
        wait_healthy(docker_client, container_id, 30, nothing)
    assert time.monotonic() - started < 10
    logs = tail_logs(docker_client, crashing.name, redact=["tok-42"])
    assert "token is ***" in logs and "tok-42" not in " ".join(logs)


def test_removing_what_is_not_there_is_fine(docker_client: docker.DockerClient) -> None:
    missing = str(uuid.uuid4())
    assert remove_container(docker_client, container_name(PROJECT, missing)) is False
    assert remove_image(docker_client, image_tag(PROJECT, missing)) is False


def test_an_image_goes_with_its_tag_and_only_then(
    docker_client: docker.DockerClient, made: Made, tmp_path: Path
) -> None:
    one, two = made.deployment(), made.deployment()
    context = write_busybox_app(tmp_path / "app")
    first = build_image(docker_client, context, image_tag(PROJECT, one), lambda _: None, nothing)
    docker_client.images.get(first).tag(f"slipway/{PROJECT}", two)  # a second name, same image
    assert remove_image(docker_client, image_tag(PROJECT, one)) is True
    assert docker_client.images.get(image_tag(PROJECT, two)).id == first
    assert remove_image(docker_client, image_tag(PROJECT, two)) is True
    with pytest.raises(NotFound):
        docker_client.images.get(first)


def test_a_spec_refuses_what_slipway_owns() -> None:
    base = {
        "project": PROJECT,
        "deployment_id": str(uuid.uuid4()),
        "image": "x",
        "name": "x",
        "port": 20000,
    }
    with pytest.raises(ValueError, match="PORT is set by Slipway"):
        ContainerSpec.model_validate({**base, "env": {"PORT": "1"}})
    with pytest.raises(ValueError, match="cannot be added"):
        ContainerSpec.model_validate({**base, "cap_add": ["ALL"]})
    with pytest.raises(ValueError, match="are Slipway's own"):
        ContainerSpec.model_validate({**base, "labels": {LABEL_PORT: "1"}})


# App config


def test_app_config_defaults_when_there_is_no_file(tmp_path: Path) -> None:
    config = load_app_config(tmp_path)
    assert config == AppConfig()
    assert config.memory == 256 * 1024 * 1024 and config.cpus == 1.0 and config.port is None
    assert config.health.path == "/"


def test_app_config_reads_slipway_toml(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        'port = 8000\nmemory = "512m"\ncpus = 0.5\ncapabilities = ["cap_net_bind_service"]\n'
        '[health]\npath = "/healthz"\ninterval = "500ms"\ntimeout = 2\nretries = 5\n'
        'start_period = "1m"\n'
    )
    config = load_app_config(tmp_path)
    assert (config.port, config.memory, config.cpus) == (8000, 512 * 1024 * 1024, 0.5)
    assert config.capabilities == ("NET_BIND_SERVICE",)
    assert (config.health.path, config.health.interval, config.health.timeout) == (
        "/healthz",
        0.5,
        2.0,
    )
    assert (config.health.retries, config.health.start_period) == (5, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = ", "is not valid TOML"),
        ('port = "80"', "port = '80': Input should be a valid integer"),
        ("port = 70000", "port = 70000: Input should be less than or equal to 65535"),
        ("memory = 512", 'give memory a unit, e.g. "512m"'),
        ('memory = "lots"', "'lots' is not a size"),
        ('memory = "1m"', "memory"),
        ("cpus = 4096", "more than this server's"),
        ('capabilities = ["SYS_ADMIN"]', "'SYS_ADMIN' cannot be granted"),
        ("helth = 1", "helth: unknown setting (known: port, memory"),
        ('[health]\npath = "healthz"', "health.path = 'healthz': 'healthz' must start with /"),
        ('[health]\ninterval = "fast"', "'fast' is not a duration"),
        ("[health]\ninterval = 0.1", "health.interval = 0.1: Input should be greater than"),
        ("[health]\nretries = 0", "health.retries = 0"),
    ],
)
def test_app_config_errors_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(AppConfigError) as caught:
        parse_app_config(text)
    assert isinstance(caught.value, ValueError)
    assert message in str(caught.value)


def test_app_config_must_be_a_small_regular_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).mkdir()
    with pytest.raises(AppConfigError, match="must be a regular file"):
        load_app_config(tmp_path)


def test_health_test_fetches_the_path_or_runs_the_command() -> None:
    test = health_test("dockerfile", parse_app_config('[health]\npath = "/up?x=1"'), 20001)
    assert test[0] == "CMD-SHELL"
    assert "wget -q -O /dev/null 'http://127.0.0.1:20001/up?x=1'" in test[1]
    assert test[1].endswith("|| exit 1")
    command = parse_app_config('[health]\ncommand = "test -f /tmp/ready"')
    assert health_test("dockerfile", command, 1) == ["CMD-SHELL", "test -f /tmp/ready"]
    with pytest.raises(ValueError, match="static sites"):
        health_test("static", AppConfig(), 1)


def test_allocate_port_skips_taken_and_bound_ports() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        bound.listen()
        busy = bound.getsockname()[1]
        low, high = busy - 2, busy + 2
        taken = {busy - 2, busy - 1, busy + 1}
        for _ in range(20):
            assert allocate_port(taken, low, high) == high
        with pytest.raises(RuntimeError, match="no free loopback port"):
            allocate_port(taken | {high}, low, high)
    assert 20000 <= allocate_port(set()) <= 29999
