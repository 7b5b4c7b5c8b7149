"""active: traffic moves to the proven release. The public routers go to its target and
`current` to it (for an app, the static server's upstream file of that slot too); the public
route must then serve it on every name of the project. Once the new release has baked, an
app's previous container goes."""

from activities.adapters.beat import Beat
from activities.adapters.containers import remove_container
from activities.adapters.docker import LABEL_PORT, LABEL_PROJECT, docker_client, ours, port_of
from activities.adapters.hosts import hosts_for
from activities.adapters.releases import (
    point,
    remember_previous,
    verified_release,
)
from activities.adapters.traefik import (
    app_target,
    candidate_target,
    public_target,
    render_route,
    static_target,
    write_route,
)
from activities.adapters.upstreams import address_of, write_upstream
from activities.adapters.web import release_served
from slipway.models import DeploymentInput, SwitchResult
from slipway.secrets import load_key
from slipway.settings import Settings

PUBLIC_CHECK_SECONDS = 15.0
"""How long the switch waits for the public route to serve the promoted release on all of
the project's names."""


def switch(settings: Settings, deployment: DeploymentInput, beat: Beat) -> SwitchResult:
    """Move the public route and `current`, then wait until the public route serves the
    release. For an app, `current` is the static server's upstream file, which then names
    the new container: the route stays as it was unless the project served otherwise.
    Idempotent: the route write and the link and file moves leave alone what is already in
    place, and what `current` pointed to before is recorded before it moves."""
    d = deployment
    layout = settings.layout
    app = verified_release(layout, d.project, d.release)
    before = public_target(layout, d.project)
    replaced = before.url if before is not None and not before.slot and before.url else None
    upstream = None
    if app is None:
        public = static_target(settings.static_address, settings.static_port, "current")
        candidate = static_target(settings.static_address, settings.static_port, "next")
        write_upstream(settings, d.project, "current", None, d.deployment_id)
    else:
        upstream = port_of(candidate_target(layout, d.project).url) or 0
        public = app_target(settings, d.project, d.deployment_id, upstream, "current")
        candidate = app_target(settings, d.project, d.deployment_id, upstream, "next")
        address = address_of(public.url)
        write_upstream(settings, d.project, "next", address, d.deployment_id)
        previous = write_upstream(settings, d.project, "current", address, d.deployment_id)
        if replaced is not None and previous is not None:
            replaced = f"http://{previous}"
    hosts = hosts_for(settings, d.project, preview=bool(d.preview_of))
    config, version = render_route(d.project, hosts, public, candidate, load_key(settings))
    write_route(layout, d.project, d.deployment_id, config, version)
    previous_release = remember_previous(layout, d.project, d.deployment_id)
    point(layout, d.project, layout.current(d.project), d.release, f".current-{d.deployment_id}")
    release_served(
        settings,
        d,
        app,
        version,
        PUBLIC_CHECK_SECONDS,
        beat,
        candidate=False,
        hosts=hosts,
        upstream=upstream,
    )
    return SwitchResult(
        previous_release=previous_release,
        previous_url=replaced if replaced != public.url else None,
        route_version=version,
    )


def retire(settings: Settings, project: str, url: str) -> str | None:
    """Remove the project's container that served at `url` before the switch; returns its
    name. Idempotent: removing a gone container is a no-op."""
    port = port_of(url)
    if port is None:
        return None
    layout = settings.layout
    with docker_client(settings.docker_host) as client:
        found = client.containers.list(
            all=True, filters=ours(layout, f"{LABEL_PROJECT}={project}", f"{LABEL_PORT}={port}")
        )
        for container in found:
            remove_container(client, container.name)
            return str(container.name)
    return None
