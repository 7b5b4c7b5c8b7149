"""Container deployments on this server: the release (an image and its descriptor), the
candidate container on its own loopback port, and the containers a switch or a failure
leaves behind. Every name derives from the deployment id (see `activities.containers`), so a
retried activity adopts what an earlier attempt made."""

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import docker
from pydantic import BaseModel, Field

from activities import routes
from activities.appconfig import (
    CONFIG_FILE,
    AppConfig,
    AppConfigError,
    allocate_port,
    load_app_config,
)
from activities.atomic import write_atomically
from activities.containers import (
    LABEL_DEPLOYMENT,
    LABEL_PORT,
    LABEL_PROJECT,
    BuildError,
    ContainerConflictError,
    ContainerStartError,
    build_image,
    container_name,
    image_tag,
    labels_for,
    remove_container,
    remove_image,
    spec_for,
    start_container,
)
from activities.failures import bad_input
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import BuildResult

LABEL_HOME = "slipway.home"
"""Which server home an image or container belongs to: a server only ever removes its own."""

DESCRIPTOR = "container.json"
"""In a container release's directory: what to run it from."""

_PORT = "port.json"


class ContainerRelease(BaseModel):
    """A container release: its image and the app's settings, enough to run it again (a
    rollback runs a kept release's image in a new container). The settings are the upload's
    slipway.toml, kept beside the descriptor and read again with it."""

    image: str
    image_id: str
    detected_type: str
    config: AppConfig = Field(default_factory=AppConfig, exclude=True)


def engine(docker_host: str) -> docker.DockerClient:
    """A client of the Docker Engine."""
    return docker.DockerClient(base_url=docker_host, timeout=120)


def build(
    client: docker.DockerClient,
    layout: Layout,
    project: str,
    deployment_id: str,
    source: Path,
    detected_type: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
) -> BuildResult:
    """Build the image and record the release.

    Idempotent: the image tag derives from the deployment id and an existing image with it is
    adopted, not rebuilt; the descriptor and marker are written atomically, marker last.
    """
    try:
        load_app_config(source)
    except AppConfigError as err:
        bad_input(str(err))
    tag = image_tag(project, deployment_id)
    try:
        labels = {**labels_for(project, deployment_id), LABEL_HOME: layout.identity}
        image_id = build_image(client, source, tag, on_line, check, labels=labels)
    except BuildError as err:
        bad_input(f"the image did not build: {err}")
    release = layout.release(project, deployment_id)
    release.mkdir(parents=True, exist_ok=True)
    if (source / CONFIG_FILE).is_file():
        write_atomically(release / CONFIG_FILE, (source / CONFIG_FILE).read_text())
    descriptor = ContainerRelease(image=tag, image_id=image_id, detected_type=detected_type)
    write_atomically(release / DESCRIPTOR, descriptor.model_dump_json())
    marker = release / RELEASE_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(marker, deployment_id)
    return BuildResult(detected_type=detected_type, deployment_type="container", image_id=image_id)


def load_release(layout: Layout, project: str, release_id: str) -> ContainerRelease | None:
    """The release's descriptor, or None for a static release."""
    directory = layout.release(project, release_id)
    if not (directory / DESCRIPTOR).is_file():
        return None
    descriptor = ContainerRelease.model_validate_json((directory / DESCRIPTOR).read_text())
    descriptor.config = load_app_config(directory)
    return descriptor


def _port(client: docker.DockerClient, layout: Layout, deployment_id: str) -> int:
    """The deployment's loopback port: allocated once, written to its work dir before any
    container uses it, and read back by every retry."""
    record = layout.work(deployment_id) / _PORT
    if record.exists():
        return int(json.loads(record.read_text())["port"])
    taken = {
        int(c.labels[LABEL_PORT])
        for c in client.containers.list(all=True, filters={"label": LABEL_PORT})
        if c.labels.get(LABEL_PORT, "").isdigit()
    }
    port = allocate_port(taken)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(record, json.dumps({"port": port}))
    return port


def start(
    client: docker.DockerClient,
    layout: Layout,
    project: str,
    deployment_id: str,
    release: ContainerRelease,
    env: Mapping[str, str],
    network_mode: str,
) -> tuple[str, int]:
    """Start (or adopt) the deployment's container from the release's image; returns its
    id and port. The app listens on $HOST:$PORT: loopback on host networking, every address
    of its own namespace on a shared network. Idempotent: the container's name derives from
    the deployment id."""
    port = _port(client, layout, deployment_id)
    listen = {"HOST": "127.0.0.1" if network_mode == "host" else "0.0.0.0"}  # noqa: S104
    spec = spec_for(
        project,
        deployment_id,
        port,
        release.config,
        release.detected_type,
        {**env, **listen},
        network_mode,
    ).model_copy(update={"image": release.image, "labels": {LABEL_HOME: layout.identity}})
    try:
        return start_container(client, spec), port
    except (ContainerConflictError, ContainerStartError) as err:
        bad_input(f"the container did not start: {err}")


def port_of(url: str) -> int | None:
    """The port of a loopback target URL."""
    tail = url.rsplit(":", 1)[-1].rstrip("/")
    return int(tail) if tail.isdigit() else None


def ours(layout: Layout, *labels: str) -> dict[str, list[str]]:
    """A Docker filter for this home's images or containers with the given labels."""
    return {"label": [f"{LABEL_HOME}={layout.identity}", *labels]}


def remove_serving_on(
    client: docker.DockerClient, layout: Layout, project: str, port: int
) -> str | None:
    """Remove the project's container that served on `port`; returns its name. Removing one
    that is gone is a no-op."""
    found = client.containers.list(
        all=True, filters=ours(layout, f"{LABEL_PROJECT}={project}", f"{LABEL_PORT}={port}")
    )
    for container in found:
        remove_container(client, container.name)
        return str(container.name)
    return None


def remove_own(client: docker.DockerClient, project: str, deployment_id: str) -> bool:
    """Remove the deployment's own container, if it has one."""
    return remove_container(client, container_name(project, deployment_id))


def sweep(
    client: docker.DockerClient, layout: Layout, waiting: set[str], check: Callable[[], None]
) -> tuple[list[str], list[str]]:
    """Remove this home's containers that neither serve their project's public route nor
    belong to a deployment under way, and images whose release is no longer kept; returns
    the names and tags removed. Idempotent: it only removes."""
    containers: list[str] = []
    for container in client.containers.list(all=True, filters=ours(layout, LABEL_PROJECT)):
        check()
        labels = container.labels
        project = labels[LABEL_PROJECT]
        public = routes.public_target(layout, project)
        serving = public is not None and port_of(public.url) == int(labels.get(LABEL_PORT, 0))
        if not serving and labels.get(LABEL_DEPLOYMENT) not in waiting:
            remove_container(client, container.name)
            containers.append(str(container.name))
    images: list[str] = []
    for image in client.images.list(filters=ours(layout, LABEL_PROJECT)):
        check()
        project, deployment = image.labels[LABEL_PROJECT], image.labels.get(LABEL_DEPLOYMENT, "")
        if deployment in waiting or (layout.release(project, deployment) / DESCRIPTOR).is_file():
            continue
        for tag in image.tags:
            remove_image(client, tag)
            images.append(tag)
    return containers, images
