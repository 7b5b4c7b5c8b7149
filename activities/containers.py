"""The Docker side of container deployments: build an image, run it with a health check and
least privilege, wait until Docker calls it healthy, and remove it again.

Plain functions over a `docker.DockerClient` the caller creates. Each is idempotent because
what it makes has a name derived from the deployment id (the image tag, the container name):
it looks for that name first and adopts what an earlier attempt left, so a retried activity
never builds or starts a second copy. All of them block: call them from a thread.
"""

import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from activities.appconfig import AppConfig, health_test
from slipway.names import validate_deployment_id, validate_project_name

LABEL_PROJECT = "slipway.project"
LABEL_DEPLOYMENT = "slipway.deployment"
LABEL_PORT = "slipway.port"
"""Labels on every image and container Slipway makes: they say whose it is, so cleanup and
adoption can tell Slipway's from anything else on the engine."""

DEFAULT_MEMORY = 256 * 1024 * 1024
DEFAULT_CPUS = 1.0
DEFAULT_PIDS = 1024
"""A fork bomb in one app must not take the server down."""

MAX_LINE = 4000
"""Build output lines are cut here: one minified blob must not become a huge log row."""

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_CAPABILITY = re.compile(r"^(CAP_)?[A-Z_]+$")
_ENV_KEY = re.compile(r"^[^=\x00]+$")


class BuildError(Exception):
    """The image does not build from this source; building it again will not help."""


class ContainerConflictError(Exception):
    """A container has the deployment's name but not its image, deployment or port."""


class ContainerStartError(Exception):
    """The Docker Engine refused to start the container (e.g. its command does not exist)."""


class UnhealthyError(Exception):
    """The container did not become healthy; the message carries the last check's output."""


def image_tag(project: str, deployment_id: str) -> str:
    """`slipway/<project>:<deployment id>`: one image per deployment."""
    return f"slipway/{validate_project_name(project)}:{validate_deployment_id(deployment_id)}"


def container_name(project: str, deployment_id: str) -> str:
    """`slipway-<project>-<deployment id as 32 hex digits>`, a DNS label of at most 63
    characters. The whole id makes it unique per deployment; a long project name is cut,
    since it is only there for people reading `docker ps`."""
    short = validate_project_name(project)[:22].rstrip("-")
    return f"slipway-{short}-{uuid.UUID(validate_deployment_id(deployment_id)).hex}"


def labels_for(project: str, deployment_id: str) -> dict[str, str]:
    """The labels that mark an image or container as this deployment's."""
    return {
        LABEL_PROJECT: validate_project_name(project),
        LABEL_DEPLOYMENT: validate_deployment_id(deployment_id),
    }


class ContainerSpec(BaseModel):
    """Everything needed to run one deployment's container. `env` holds secrets: they are
    `SecretStr`, so the spec's repr and JSON show them masked and it cannot carry them into
    logs or workflow history by accident; only `start_container` reads them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: str
    deployment_id: str
    image: str = Field(min_length=1)
    name: str
    port: int = Field(ge=1, le=65535, description="The app's port; passed to it as PORT.")
    env: dict[str, SecretStr] = Field(default_factory=dict, repr=False)
    labels: dict[str, str] = Field(default_factory=dict)
    health_test: list[str] | None = Field(
        default=None, description="Docker's test list; None keeps the image's HEALTHCHECK."
    )
    health_interval: float = Field(default=2.0, ge=0.001)
    health_timeout: float = Field(default=3.0, ge=0.001)
    health_retries: int = Field(default=3, ge=1)
    health_start_period: float = Field(default=10.0, ge=0)
    memory: int = Field(default=DEFAULT_MEMORY, ge=6 * 1024 * 1024, description="Bytes.")
    cpus: float = Field(default=DEFAULT_CPUS, gt=0)
    pids_limit: int = Field(default=DEFAULT_PIDS, ge=16)
    restart_retries: int = Field(
        default=3, ge=0, le=100, description="0 means never restart (Docker reads 0 as forever)."
    )
    cap_add: list[str] = Field(default_factory=list)
    network_mode: str = Field(default="host", min_length=1)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return validate_project_name(value)

    @field_validator("deployment_id")
    @classmethod
    def _deployment(cls, value: str) -> str:
        return validate_deployment_id(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(f"invalid container name {value!r}")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key in value:
            if not _ENV_KEY.fullmatch(key):
                raise ValueError(f"invalid environment variable name {key!r}")
        if "PORT" in value:
            raise ValueError("PORT is set by Slipway to the app's port; remove it from the env")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {LABEL_PROJECT, LABEL_DEPLOYMENT, LABEL_PORT} & value.keys()
        if reserved:
            raise ValueError(f"labels {sorted(reserved)} are Slipway's own")
        return value

    @field_validator("cap_add")
    @classmethod
    def _cap_add(cls, value: list[str]) -> list[str]:
        for cap in value:
            if not _CAPABILITY.fullmatch(cap) or cap.removeprefix("CAP_") == "ALL":
                raise ValueError(f"capability {cap!r} cannot be added")
        return value

    def all_labels(self) -> dict[str, str]:
        """The spec's labels plus Slipway's, which say whose container this is."""
        return {
            **self.labels,
            **labels_for(self.project, self.deployment_id),
            LABEL_PORT: str(self.port),
        }


def spec_for(
    project: str,
    deployment_id: str,
    port: int,
    config: AppConfig,
    detected_type: str,
    env: Mapping[str, str] | None = None,
    network_mode: str = "host",
) -> ContainerSpec:
    """The container spec of a deployment from its app config, with the deterministic image
    tag and container name."""
    return ContainerSpec(
        project=project,
        deployment_id=deployment_id,
        image=image_tag(project, deployment_id),
        name=container_name(project, deployment_id),
        port=port,
        env={key: SecretStr(value) for key, value in (env or {}).items()},
        health_test=health_test(detected_type, config, port),
        health_interval=config.health.interval,
        health_timeout=config.health.timeout,
        health_retries=config.health.retries,
        health_start_period=config.health.start_period,
        memory=config.memory,
        cpus=config.cpus,
        cap_add=list(config.capabilities),
        network_mode=network_mode,
    )


def _clean(line: str) -> str:
    """A terminal line as a log row: colours removed, only what a carriage return left."""
    line = _ANSI.sub("", line).rstrip("\r")
    return line.rsplit("\r", 1)[-1].rstrip()[:MAX_LINE]


class _Lines:
    """Reassembles whole lines from the build's chunks, which split and join them freely
    ('Step 1/5 : FROM scratch' and its newline arrive apart)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.pending = ""

    def feed(self, text: str) -> None:
        *complete, self.pending = (self.pending + text).split("\n")
        for line in complete:
            self.emit(line)

    def emit(self, line: str) -> None:
        cleaned = _clean(line)
        if cleaned:
            self.on_line(cleaned)

    def flush(self) -> None:
        self.emit(self.pending)
        self.pending = ""


def _image(client: docker.DockerClient, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except NotFound:
        return None


def build_image(
    client: docker.DockerClient,
    context_dir: Path,
    tag: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
    *,
    labels: Mapping[str, str] | None = None,
    network_mode: str = "none",
    dockerfile: str = "Dockerfile",
) -> str:
    """Build `context_dir` into an image tagged `tag` and return its id, sending each line of
    the build's output to `on_line` in order (colours stripped, blank lines dropped) and calling
    `check` between chunks so a cancellation stops the build.

    Idempotent: the Engine tags an image only once its build has completed, so an existing
    tag is a finished build of this deployment and is adopted without rebuilding (and without
    output). An interrupted build leaves no tag: a retry builds again, mostly from the cache.
    Leaving early (an exception from `check` or `on_line`) closes the connection, which makes
    the Engine abandon the build untagged.

    The legacy builder runs RUN steps with `network_mode` ("none" by default: builds must not
    depend on a registry or the internet). `BuildError` means the source does not build.
    """
    existing = _image(client, tag)
    if existing is not None:
        return str(existing.id)
    if not (context_dir / dockerfile).is_file():
        raise BuildError(f"no {dockerfile} at the root of the upload")
    check()
    try:
        return _build(client, context_dir, tag, on_line, check, labels, network_mode, dockerfile)
    except APIError as err:
        if not err.is_client_error():
            raise
        raise BuildError(f"docker build failed: {err.explanation or err}") from None


def _build(
    client: docker.DockerClient,
    context_dir: Path,
    tag: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
    labels: Mapping[str, str] | None,
    network_mode: str,
    dockerfile: str,
) -> str:
    """One build, streamed; a Dockerfile the Engine cannot parse is a 400 from the call."""
    stream = client.api.build(
        path=str(context_dir),
        dockerfile=dockerfile,
        tag=tag,
        labels=dict(labels) if labels else None,
        network_mode=network_mode,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    lines = _Lines(on_line)
    built: str | None = None
    try:
        for chunk in stream:
            check()
            if "error" in chunk:
                lines.flush()
                detail = chunk.get("errorDetail") or {}
                raise BuildError(f"docker build failed: {detail.get('message') or chunk['error']}")
            if "stream" in chunk:
                lines.feed(chunk["stream"])
            elif "status" in chunk and "progress" not in chunk:
                prefix = f"{chunk['id']}: " if chunk.get("id") else ""
                lines.feed(f"{prefix}{chunk['status']}\n")
            elif "aux" in chunk:
                built = chunk["aux"].get("ID") or built
        lines.flush()
    finally:
        stream.close()
    image = _image(client, tag)
    if built is None or image is None:
        raise RuntimeError(f"the Docker Engine ended the build of {tag} without an image")
    return str(image.id)


def _find(client: docker.DockerClient, name: str) -> Any:
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _create(client: docker.DockerClient, spec: ContainerSpec) -> Any:
    """Create the container as the spec says: all capabilities dropped but the spec's, no
    privilege gain through setuid, an init that forwards SIGTERM, and limits."""
    healthcheck = None
    if spec.health_test is not None:
        healthcheck = {
            "test": spec.health_test,
            "interval": int(spec.health_interval * 1e9),
            "timeout": int(spec.health_timeout * 1e9),
            "retries": spec.health_retries,
            "start_period": int(spec.health_start_period * 1e9),
        }
    restart = (
        {"Name": "on-failure", "MaximumRetryCount": spec.restart_retries}
        if spec.restart_retries
        else {"Name": "no"}
    )
    env = {key: value.get_secret_value() for key, value in spec.env.items()}
    env["PORT"] = str(spec.port)
    return client.containers.create(
        spec.image,
        name=spec.name,
        labels=spec.all_labels(),
        environment=env,
        network_mode=spec.network_mode,
        restart_policy=restart,
        mem_limit=spec.memory,
        memswap_limit=spec.memory,
        nano_cpus=int(spec.cpus * 1e9),
        pids_limit=spec.pids_limit,
        cap_drop=["ALL"],
        cap_add=spec.cap_add or None,
        security_opt=["no-new-privileges"],
        init=True,
        healthcheck=healthcheck,
    )


def _check_ours(container: Any, spec: ContainerSpec) -> None:
    labels = container.attrs["Config"].get("Labels") or {}
    found = (
        labels.get(LABEL_DEPLOYMENT),
        container.attrs["Config"].get("Image"),
        labels.get(LABEL_PORT),
    )
    wanted = (spec.deployment_id, spec.image, str(spec.port))
    if found != wanted:
        raise ContainerConflictError(
            f"container {spec.name} exists with deployment, image, port {found}, not {wanted}: "
            "remove it, or keep the port this deployment was first given"
        )


def _created_meanwhile(client: docker.DockerClient, name: str) -> Any:
    """The container another attempt is creating: Docker reserves the name before the
    container can be looked up, so wait a moment for it."""
    deadline = time.monotonic() + 10
    while (container := _find(client, name)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"container name {name} is taken but no such container appeared")
        time.sleep(0.1)
    return container


def start_container(client: docker.DockerClient, spec: ContainerSpec) -> str:
    """Run the deployment's container and return its id (it may not be healthy yet).

    Idempotent: the container's name derives from the deployment id, so an existing one is
    this deployment's, left by an earlier attempt; it is adopted (and started if it is not
    running) after checking its deployment, image and port labels, never created twice. Two
    attempts racing to create it meet Docker's name conflict, and the loser adopts.
    """
    container = _find(client, spec.name)
    if container is None:
        try:
            container = _create(client, spec)
        except APIError as err:
            if err.status_code != 409:
                raise
            container = _created_meanwhile(client, spec.name)
    _check_ours(container, spec)
    status = container.status
    if status in ("removing", "dead"):
        raise RuntimeError(f"container {spec.name} is {status}; try again once it is gone")
    try:
        if status == "paused":
            container.unpause()
        elif status in ("created", "exited"):
            container.start()
    except APIError as err:
        raise ContainerStartError(
            f"container {spec.name} could not start: {err.explanation or err}"
        ) from None
    return str(container.id)


def _last_check(health: Mapping[str, Any]) -> str:
    log = health.get("Log") or []
    if not log:
        return "no health check has run yet"
    last = log[-1]
    output = _ANSI.sub("", str(last.get("Output") or "")).strip()[:500]
    return f"last health check exited {last.get('ExitCode')}: {output or '(no output)'}"


def wait_healthy(
    client: docker.DockerClient,
    container_id: str,
    timeout: float,
    check: Callable[[], None],
    *,
    poll: float = 0.25,
) -> None:
    """Return once Docker reports the container healthy; raise `UnhealthyError` with the last
    check's output if it turns unhealthy, exits or restarts (a crash while starting is a bad
    release, even if the restart policy would bring it back), or is not healthy after
    `timeout` seconds. `check` is called on every poll, for cancellation.

    Idempotent: it only reads.
    """
    deadline = time.monotonic() + timeout
    try:
        container = client.containers.get(container_id)
    except NotFound:
        raise UnhealthyError(f"container {container_id} does not exist") from None
    restarts = container.attrs.get("RestartCount", 0)
    name = container.name
    while True:
        check()
        try:
            container.reload()
        except NotFound:
            raise UnhealthyError(f"container {name} was removed while starting") from None
        state = container.attrs["State"]
        health = state.get("Health")
        if health is None:
            raise UnhealthyError(
                f"container {name} has no health check: neither the image nor Slipway set one"
            )
        if health.get("Status") == "healthy":
            return
        crashed = container.attrs.get("RestartCount", 0) > restarts
        if crashed or state.get("Status") not in ("running", "paused"):
            oom = " (out of memory)" if state.get("OOMKilled") else ""
            error = f", {state['Error']}" if state.get("Error") else ""
            raise UnhealthyError(
                f"container {name} exited with code {state.get('ExitCode')}{oom}{error} "
                f"while starting (now {state.get('Status')}); {_last_check(health)}"
            )
        if health.get("Status") == "unhealthy":
            raise UnhealthyError(f"container {name} is unhealthy; {_last_check(health)}")
        if time.monotonic() >= deadline:
            raise UnhealthyError(
                f"container {name} was not healthy after {timeout:g}s "
                f"(health: {health.get('Status')}); {_last_check(health)}"
            )
        time.sleep(poll)


def tail_logs(
    client: docker.DockerClient, name: str, lines: int = 50, redact: Iterable[str] = ()
) -> list[str]:
    """The container's last output lines, with every value in `redact` (the deployment's
    secrets) replaced by `***`, for a failure report. An app may print its environment."""
    container = _find(client, name)
    if container is None:
        return []
    text = container.logs(tail=lines, stdout=True, stderr=True).decode("utf-8", "replace")
    for secret in sorted((s for s in redact if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return [_clean(line) for line in text.splitlines()]


def remove_container(client: docker.DockerClient, name: str, stop_timeout: float = 10.0) -> bool:
    """Stop the container (SIGTERM, then SIGKILL after `stop_timeout` seconds, so requests in
    flight can finish) and remove it; False if there was none.

    Idempotent: a missing container is the goal reached; a removal already under way is
    waited for.
    """
    container = _find(client, name)
    if container is None:
        return False
    try:
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=math.ceil(stop_timeout))
        container.remove(force=True, v=True)
    except NotFound:
        return False
    except APIError as err:
        if err.status_code != 409:
            raise
        deadline = time.monotonic() + 30
        while _find(client, name) is not None:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return True


def remove_image(client: docker.DockerClient, tag: str) -> bool:
    """Remove the deployment's image tag, and the image with it when no other tag names it;
    False if the tag did not exist. Remove the image's containers first: Docker refuses to
    untag an image a container still uses.

    Idempotent: a missing tag is the goal reached. It removes by tag, never by id, so an
    image that another tag also names survives.
    """
    try:
        client.images.remove(tag, noprune=False)
    except NotFound:
        return False
    return True
