"""One look at a release that serves, as visitors and Docker see it: the public route through
Traefik, and for an app its container's state, health and restart count."""

from typing import Any

import docker
from docker.errors import DockerException

from activities.adapters import keepalive
from activities.adapters.docker import (
    LABEL_PORT,
    LABEL_PROJECT,
    docker_client,
    ours,
    port_of,
)
from activities.adapters.releases import load_release
from activities.adapters.traefik import public_target
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import ProbeResult
from slipway.settings import Settings


def serving_container(client: docker.DockerClient, layout: Layout, project: str) -> Any | None:
    """The project's container the public route sends traffic to, if it is an app."""
    public = public_target(layout, project)
    port = port_of(public.url) if public and not public.slot else None
    if port is None:
        return None
    for container in client.containers.list(
        all=True, filters=ours(layout, f"{LABEL_PROJECT}={project}", f"{LABEL_PORT}={port}")
    ):
        return container
    return None


def probe(
    settings: Settings, layout: Layout, project: str, release: str | None
) -> tuple[ProbeResult, Any | None]:
    """Look once at the project's serving `release` (its `current_release`); returns the
    verdict and, for an app, its container (None when it has none or it is gone)."""
    if release is None:
        return ProbeResult(ok=False, detail="no release is current"), None
    app = load_release(layout, project, release)
    problems: list[str] = []
    container = None
    restarts = 0
    if app is not None:
        try:
            with docker_client(settings.docker_host) as client:
                container = serving_container(client, layout, project)
                if container is None:
                    problems.append("its container is gone")
                else:
                    state = container.attrs["State"]
                    restarts = int(container.attrs.get("RestartCount", 0))
                    health = state.get("Health", {}).get("Status", "none")
                    if state.get("Status") != "running":
                        problems.append(f"its container is {state.get('Status')}")
                    elif health == "unhealthy":
                        problems.append("its container is unhealthy")
        except DockerException as err:
            problems.append(f"Docker did not answer: {err}")
    path = app.config.health.path if app else f"/{RELEASE_MARKER}"
    problem = _http(settings, project, path, None if app else release)
    if problem:
        problems.append(problem)
    verdict = ProbeResult(ok=not problems, detail="; ".join(problems) or "ok", restarts=restarts)
    return verdict, container


def _http(settings: Settings, project: str, path: str, body: str | None) -> str | None:
    """What is wrong with the public route's answer, or None."""
    host = settings.project_host(project)
    try:
        answer = keepalive.get(settings.proxy_url, path, host)
    except keepalive.ProbeError as err:
        return f"http://{host}{path} did not answer: {err}"
    if not answer.is_success:
        return f"http://{host}{path} answered HTTP {answer.status}"
    if body is not None and answer.body.decode(errors="replace").strip() != body:
        return f"http://{host}{path} does not name release {body}"
    return None
