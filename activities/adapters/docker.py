"""The Docker Engine: one way to open a client, and the names and labels that mark what
Slipway makes on it. Every name derives from the deployment id, so a retried activity finds
what an earlier attempt made and adopts it instead of making a second one."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import docker

from slipway.layout import Layout
from slipway.names import validate_deployment_id, validate_project_name

LABEL_PROJECT = "slipway.project"
LABEL_DEPLOYMENT = "slipway.deployment"
LABEL_PORT = "slipway.port"
"""Labels on every image and container Slipway makes: they say whose it is, so cleanup and
adoption can tell Slipway's from anything else on the engine."""

LABEL_HOME = "slipway.home"
"""Which server home an image or container belongs to: a server only ever removes its own."""


@contextmanager
def docker_client(docker_host: str) -> Iterator[docker.DockerClient]:
    """A client of the Docker Engine, closed when the block ends."""
    client = docker.DockerClient(base_url=docker_host, timeout=120)
    try:
        yield client
    finally:
        client.close()


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


def ours(layout: Layout, *labels: str) -> dict[str, list[str]]:
    """A Docker filter for this home's images or containers with the given labels."""
    return {"label": [f"{LABEL_HOME}={layout.identity}", *labels]}


def port_of(url: str) -> int | None:
    """The port of a loopback target URL."""
    tail = url.rsplit(":", 1)[-1].rstrip("/")
    return int(tail) if tail.isdigit() else None
