"""health_check: the release proves itself before any traffic moves. An app's container must
first be healthy in Docker's eyes; then the release must answer through Traefik as this
deployment's candidate, through the route version just written (for an app, from its own
container's port), on every name of the project: its base name and each custom domain."""

import time
from collections.abc import Callable

from activities.adapters.beat import Beat
from activities.adapters.containers import tail_logs, wait_healthy
from activities.adapters.docker import container_name, docker_client
from activities.adapters.hosts import hosts_for
from activities.adapters.ports import recorded
from activities.adapters.releases import verified_release
from activities.adapters.traefik import candidate_target
from activities.adapters.web import release_served
from slipway.errors import UnhealthyError
from slipway.models import DeploymentInput, HealthResult
from slipway.settings import Settings

LAST_LINES = 50
"""How much of a failed container's own output goes into the failure."""


def check(
    settings: Settings,
    deployment: DeploymentInput,
    route_version: str,
    beat: Beat,
    secrets: Callable[[], list[str]],
) -> HealthResult:
    """Wait until the release is healthy and served as the candidate, or fail with what was
    seen last (for an app, its last output lines, the values `secrets` gives masked).
    Idempotent: it only reads."""
    d = deployment
    timeout = settings.health_timeout_seconds
    deadline = time.monotonic() + timeout
    app = verified_release(settings.layout, d.project, d.release)
    if app is not None:
        name = container_name(d.project, d.deployment_id)
        with docker_client(settings.docker_host) as client:
            try:
                wait_healthy(client, name, timeout, beat.check)
            except UnhealthyError as err:
                lines = tail_logs(client, name, LAST_LINES, secrets())
                output = "\n".join(lines) if lines else "(no output)"
                raise UnhealthyError(f"{err}\nits last output:\n{output}") from None
    remaining = max(0.0, deadline - time.monotonic())
    hosts = hosts_for(settings, d.project)
    upstream = None
    if app is not None and candidate_target(settings.layout, d.project).via:
        upstream = recorded(settings.layout, d.deployment_id)
    return release_served(
        settings,
        d,
        app,
        route_version,
        remaining,
        beat,
        candidate=True,
        hosts=hosts,
        upstream=upstream,
    )
