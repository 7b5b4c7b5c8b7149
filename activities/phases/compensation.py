"""Compensation: after a failure or a cancel in a phase that touched links or routes, the
route, an app's upstream files and then `current` put back as they were before this
deployment, then, once Traefik serves the restored route, the deployment's own container
removed."""

from activities.adapters.beat import Beat
from activities.adapters.containers import remove_container
from activities.adapters.docker import container_name, docker_client
from activities.adapters.releases import (
    current_release,
    load_release,
    point,
    remembered_previous,
)
from activities.adapters.traefik import restore_route, version_of
from activities.adapters.upstreams import restore_upstreams
from activities.adapters.web import wait_for_route
from slipway.models import DeploymentInput
from slipway.settings import Settings

RESTORED_ROUTE_SECONDS = 15.0
"""How long to wait for Traefik to serve the restored route before removing a container."""


def restore(settings: Settings, deployment: DeploymentInput, beat: Beat) -> None:
    """Put traffic back where it was. Idempotent: each step acts only on what the deployment
    recorded before changing it, and removing a gone container is a no-op."""
    d = deployment
    layout = settings.layout
    restore_route(layout, d.project, d.deployment_id)
    restore_upstreams(layout, d.project, d.deployment_id)
    _restore_current(settings, d)
    if load_release(layout, d.project, d.release) is None:
        return
    restored = version_of(layout, d.project)
    if restored is not None:
        host = settings.project_host(d.project)
        wait_for_route(settings.proxy_url, host, restored, RESTORED_ROUTE_SECONDS, beat)
    with docker_client(settings.docker_host) as client:
        remove_container(client, container_name(d.project, d.deployment_id))


def _restore_current(settings: Settings, d: DeploymentInput) -> None:
    """`current` back to the release it pointed to before this deployment promoted its own;
    acts only while `current` still points at this deployment's release."""
    layout = settings.layout
    recorded, previous = remembered_previous(layout, d.deployment_id)
    if not recorded or current_release(layout, d.project) != d.release or previous == d.release:
        return
    if previous and layout.release(d.project, previous).is_dir():
        point(layout, d.project, layout.current(d.project), previous, f".current-{d.deployment_id}")
    else:
        layout.current(d.project).unlink()
