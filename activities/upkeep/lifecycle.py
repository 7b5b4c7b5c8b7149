"""Stopping, starting and restarting a project on its server, between two deployments.

A stopped project keeps its route, release and container: its public routers send requests
to a service with no server, which Traefik answers with 503 and `X-Slipway-State: stopped`,
and an app's container is stopped (Docker's `unless-stopped` then leaves it stopped, even
across a restart of the Engine). Starting puts both back, the container proven healthy
before the route serves it. Restarting an app starts a new container of the same release on
a port of its own, proves it healthy, moves the public route to it, and only then removes
the old one, so no request fails; a static site has nothing running to restart: its route is
rendered again and must be served."""

import shutil
import time
from collections.abc import Callable
from typing import Any

import docker
from docker.errors import APIError, NotFound

from activities.adapters.beat import Beat
from activities.adapters.container_spec import spec_for
from activities.adapters.containers import (
    ContainerConflictError,
    ContainerStartError,
    remove_container,
    start_container,
    wait_healthy,
)
from activities.adapters.docker import (
    LABEL_DEPLOYMENT,
    LABEL_HOME,
    LABEL_PORT,
    LABEL_PROJECT,
    container_name,
    docker_client,
    ours,
    port_of,
)
from activities.adapters.hosts import hosts_for
from activities.adapters.ports import recorded_port
from activities.adapters.releases import ContainerRelease, current_release, load_release
from activities.adapters.traefik import (
    Target,
    app_target,
    candidate_target,
    install_route,
    public_target,
    render_route,
)
from activities.adapters.upstreams import address_of, write_upstream
from activities.adapters.web import wait_for_route
from slipway.errors import BadInputError, UnhealthyError
from slipway.secrets import SecretError, load_key, unseal
from slipway.settings import Settings

ROUTE_WAIT_SECONDS = 15.0
"""How long a lifecycle action waits for Traefik to serve the route it wrote."""

DRAIN_SECONDS = 1.0
"""How long a replaced container keeps answering after the route left it, for requests
that were already on their way to it."""

STOP_SECONDS = 10.0
"""How long an app has to finish after SIGTERM before Docker kills it."""


class Serving:
    """What serves a project on this server now: its release, the public target and, for an
    app, the release's descriptor and its container (None if it is gone)."""

    def __init__(
        self,
        release: str,
        public: Target,
        app: ContainerRelease | None,
        container: Any | None,
    ) -> None:
        self.release = release
        self.public = public
        self.app = app
        self.container = container


def serving(settings: Settings, client: docker.DockerClient, project: str) -> Serving:
    """What serves the project; a `BadInputError` if nothing does here (never deployed, or
    deployed on another server)."""
    layout = settings.layout
    public = public_target(layout, project)
    release = current_release(layout, project)
    if public is None or release is None:
        raise BadInputError(
            f"{project} has no active release on server {settings.server}: deploy it first"
        )
    app = load_release(layout, project, release)
    container = None
    port = port_of(public.url) if app is not None else None
    if port is not None:
        found = client.containers.list(
            all=True, filters=ours(layout, f"{LABEL_PROJECT}={project}", f"{LABEL_PORT}={port}")
        )
        container = found[0] if found else None
    return Serving(release, public, app, container)


def route_to(settings: Settings, project: str, public: Target, *, stopped: bool, beat: Beat) -> str:
    """Point the project's public routers at `public` (or at nothing, `stopped`), its
    candidate router left as it is, and wait until Traefik serves that route; its version.
    An app behind the static server moves by its `current` upstream file, its route staying
    the same. Idempotent: an identical file or route is not written again."""
    layout = settings.layout
    if public.lane and public.url:
        write_upstream(settings, project, public.lane, address_of(public.url))
    hosts = hosts_for(settings, project)
    config, version = render_route(
        project,
        hosts,
        public,
        candidate_target(layout, project),
        load_key(settings),
        stopped=stopped,
    )
    if layout.route(project).read_text() != config:
        install_route(layout, project, config)
    if not wait_for_route(settings.proxy_url, hosts.base, version, ROUTE_WAIT_SECONDS, beat):
        raise RuntimeError(f"Traefik did not serve the new route of {project} in time")
    return version


def stop(settings: Settings, project: str, beat: Beat) -> str:
    """The route answers 503 first (so no visitor meets a closed port), then the app's
    container stops. Idempotent: a stopped route and a stopped container stay so."""
    with docker_client(settings.docker_host) as client:
        now = serving(settings, client, project)
        route_to(settings, project, now.public, stopped=True, beat=beat)
        if now.container is not None and now.container.status in ("running", "restarting"):
            now.container.stop(timeout=int(STOP_SECONDS))
    what = "its container stopped" if now.app is not None else "its site no longer served"
    return f"Stopped: its route answers 503, {what}"


EnvOf = Callable[[str], dict[str, str]]
"""A deployment's environment (unsealed) by its id: what a new container of it runs with."""


def start(
    settings: Settings, project: str, operation_id: str, env_of: EnvOf, timeout: float, beat: Beat
) -> str:
    """An app's container started again (a new one of the same release if it is gone) and
    proven healthy, then the route serves it again. Idempotent: a running container and a
    served route are left as they are."""
    with docker_client(settings.docker_host) as client:
        now = serving(settings, client, project)
        public, container = now.public, now.container
        detail = "its site served again"
        if now.app is not None and container is None:
            public = _replace(settings, client, project, now, operation_id, env_of, timeout, beat)
            detail = "its container was gone: a new one of the same release serves"
        elif container is not None:
            try:
                if container.status in ("created", "exited"):
                    container.start()
            except APIError as err:
                raise BadInputError(f"the container did not start: {err.explanation}") from None
            wait_healthy(client, container.id, timeout, beat.check)
            detail = f"its container {container.name} is healthy"
        route_to(settings, project, public, stopped=False, beat=beat)
    return f"Started: {detail}"


def restart(
    settings: Settings, project: str, operation_id: str, env_of: EnvOf, timeout: float, beat: Beat
) -> str:
    """For an app: a new container of the serving release, proven healthy before the route
    moves to it; the old one removed after. For a static site: its route rendered again and
    served. Either way a stopped project runs afterwards. Idempotent: the new container's
    name and port derive from `operation_id`, so a retry adopts it, and a retry after the
    switch only finishes removing the old container."""
    with docker_client(settings.docker_host) as client:
        now = serving(settings, client, project)
        if now.app is None:
            route_to(settings, project, now.public, stopped=False, beat=beat)
            return "Restarted: nothing runs for a static site; its route was rendered again"
        new_name = container_name(project, operation_id)
        old = now.container
        if old is not None and old.name == new_name:
            _drop_old(settings, client, project, new_name)
            return f"Restarted: {new_name} serves"
        _replace(settings, client, project, now, operation_id, env_of, timeout, beat)
        time.sleep(DRAIN_SECONDS)
        _drop_old(settings, client, project, new_name)
    return f"Restarted: {new_name} serves, proven healthy before the old container went"


def _replace(
    settings: Settings,
    client: docker.DockerClient,
    project: str,
    now: Serving,
    operation_id: str,
    env_of: EnvOf,
    timeout: float,
    beat: Beat,
) -> Target:
    """Start a new container of the serving release on its own port, wait until Docker calls
    it healthy, and point the public route at it; its target."""
    layout = settings.layout
    app = now.app
    if app is None:
        raise ValueError("a static site has no container")
    deployment = now.container.labels[LABEL_DEPLOYMENT] if now.container else now.release
    network = settings.container_network
    port = recorded_port(client, layout, operation_id)
    listen = {"HOST": "127.0.0.1" if network == "host" else "0.0.0.0"}  # noqa: S104
    name = container_name(project, operation_id)
    env = {**env_of(deployment), **listen}
    spec = spec_for(
        project, deployment, port, app.config, app.detected_type, env, network
    ).model_copy(update={"image": app.image, "name": name, "labels": {LABEL_HOME: layout.identity}})
    try:
        container_id = start_container(client, spec)
    except (ContainerConflictError, ContainerStartError) as err:
        raise BadInputError(f"the new container did not start: {err}") from None
    try:
        wait_healthy(client, container_id, timeout, beat.check)
    except UnhealthyError:
        remove_container(client, name)
        shutil.rmtree(layout.work(operation_id), ignore_errors=True)
        raise
    public = app_target(settings, project, deployment, port, "current", name=name)
    route_to(settings, project, public, stopped=False, beat=beat)
    shutil.rmtree(layout.work(operation_id), ignore_errors=True)
    return public


def _drop_old(settings: Settings, client: docker.DockerClient, project: str, keep: str) -> None:
    """Remove the project's containers that served before `keep` took over (those of
    deployments under way are not the serving one's and are left alone: they run only
    between deployments, and a lifecycle action never overlaps one)."""
    public = public_target(settings.layout, project)
    port = port_of(public.url) if public else None
    for container in client.containers.list(
        all=True, filters=ours(settings.layout, f"{LABEL_PROJECT}={project}")
    ):
        if container.name != keep and container.labels.get(LABEL_PORT) != str(port):
            try:
                remove_container(client, container.name, STOP_SECONDS)
            except NotFound:
                continue


def unsealed(settings: Settings, sealed: dict[str, str]) -> dict[str, str]:
    """The serving deployment's environment, for the container a start or restart makes."""
    try:
        return unseal(sealed, load_key(settings))
    except SecretError as err:
        raise BadInputError(str(err)) from None
