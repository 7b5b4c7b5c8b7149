"""updating_routes: the candidate router pointed at the new release (for an app, at its own
container, started now on its own port) on every name of the project, the public routers left
as they are. For an app, the candidate router goes to the static server's `next` slot, whose
upstream file now names the new container; for a static release, `next` has no upstream
file (one an app left is removed), so the static server serves the slot's link.

A project's first deployment here renders its public routers too, pointed at the `current`
slot the switch fills (a link, or an app's upstream file): until then its names answer 404
from the static server, as they would with no route, and the switch renders the same route
again. A project on its base name alone is served by the shared route, so its route is kept
beside Traefik's directory and Traefik reads nothing for it (see
`activities.adapters.traefik`)."""

from collections.abc import Mapping

from activities.adapters.container_spec import spec_for
from activities.adapters.containers import (
    ContainerConflictError,
    ContainerStartError,
    start_container,
)
from activities.adapters.docker import LABEL_HOME, docker_client
from activities.adapters.hosts import hosts_for
from activities.adapters.ports import recorded_port
from activities.adapters.releases import ContainerRelease, verified_release
from activities.adapters.traefik import (
    app_target,
    is_stopped,
    public_target,
    render_route,
    static_target,
    write_route,
)
from activities.adapters.upstreams import address_of, write_upstream
from slipway.errors import BadInputError
from slipway.models import DeploymentInput, RouteResult
from slipway.secrets import load_key
from slipway.settings import Settings


def update_routes(
    settings: Settings, deployment: DeploymentInput, env: Mapping[str, str]
) -> RouteResult:
    """Route the candidate to the release (and, on a project's first deployment, the public
    names to the `current` slot, still empty); an app's container starts with `env` (in
    clear: it goes nowhere but the container); a stopped project's public routers stay
    stopped until the switch. Idempotent: the container is adopted by name, its port is allocated
    once, and the upstream and route writes keep what they replaced (see
    `upstreams.write_upstream`, `traefik.write_route`)."""
    d = deployment
    layout = settings.layout
    hosts = hosts_for(settings, d.project, preview=bool(d.preview_of))
    public = public_target(layout, d.project)
    stopped = is_stopped(layout, d.project)
    key = load_key(settings)
    app = verified_release(layout, d.project, d.release)
    if app is None:
        candidate = static_target(settings.static_address, settings.static_port, "next")
        write_upstream(settings, d.project, "next", None, d.deployment_id)
        if public is None:
            public = static_target(settings.static_address, settings.static_port, "current")
        config, version = render_route(d.project, hosts, public, candidate, key, stopped=stopped)
        return write_route(layout, d.project, d.deployment_id, config, version)
    container_id, port = _start(settings, d, app, env)
    target = app_target(settings, d.project, d.deployment_id, port, "next")
    write_upstream(settings, d.project, "next", address_of(target.url), d.deployment_id)
    if public is None:
        public = app_target(settings, d.project, d.deployment_id, port, "current")
    config, version = render_route(d.project, hosts, public, target, key, stopped=stopped)
    routed = write_route(layout, d.project, d.deployment_id, config, version)
    return routed.model_copy(update={"container_id": container_id, "port": port})


def _start(
    settings: Settings, d: DeploymentInput, app: ContainerRelease, given: Mapping[str, str]
) -> tuple[str, int]:
    """Start (or adopt) the deployment's container from the release's image; returns its
    id and port. The app listens on $HOST:$PORT: loopback on host networking, every address
    of its own namespace on a shared network."""
    network = settings.container_network
    listen = {"HOST": "127.0.0.1" if network == "host" else "0.0.0.0"}  # noqa: S104
    with docker_client(settings.docker_host) as client:
        port = recorded_port(client, settings.layout, d.deployment_id)
        env = {**given, **listen}
        spec = spec_for(
            d.project, d.deployment_id, port, app.config, app.detected_type, env, network
        ).model_copy(update={"image": app.image, "labels": {LABEL_HOME: settings.layout.identity}})
        try:
            return start_container(client, spec), port
        except (ContainerConflictError, ContainerStartError) as err:
            raise BadInputError(f"the container did not start: {err}") from None
