"""updating_routes: the project's Traefik route, written to the file provider's directory."""

import hashlib
import json
from typing import Any

import yaml

from activities.atomic import write_atomically
from slipway.layout import Layout
from slipway.models import RouteResult

_PREVIOUS = "previous-route.json"


ROUTE_HEADER = "X-Slipway-Route"
"""Response header naming the route's version, so a health check knows Traefik has loaded
the route just written and is not still answering from the one before."""


CANDIDATE_HEADER = "X-Slipway-Candidate"
"""Request header that routes a request to the release being proven (`next`) instead of the
one serving (`current`); its value is the deployment's id."""


def _slot(project: str, slot: str) -> dict[str, Any]:
    return {
        "headers": {"customRequestHeaders": {"X-Slipway-Project": project, "X-Slipway-Slot": slot}}
    }


def render_static_route(
    project: str, host: str, static_port: int, deployment_id: str
) -> tuple[str, str]:
    """Traefik dynamic configuration for a static project: `host` is served from the
    project's `current` release, and requests carrying the candidate header with this
    deployment's id from `next`. Returns the configuration and its version."""
    name = f"slipway-{project}"
    config: dict[str, Any] = {
        "http": {
            "routers": {
                name: {
                    "rule": f"Host(`{host}`)",
                    "entryPoints": ["web"],
                    "service": name,
                    "middlewares": [f"{name}-current"],
                },
                f"{name}-candidate": {
                    "rule": f"Host(`{host}`) && Header(`{CANDIDATE_HEADER}`, `{deployment_id}`)",
                    "entryPoints": ["web"],
                    "service": name,
                    "middlewares": [f"{name}-next"],
                },
            },
            "middlewares": {
                f"{name}-current": _slot(project, "current"),
                f"{name}-next": _slot(project, "next"),
            },
            "services": {
                name: {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{static_port}"}]}}
            },
        }
    }
    version = hashlib.sha256(yaml.safe_dump(config, sort_keys=True).encode()).hexdigest()[:16]
    for middleware in config["http"]["middlewares"].values():
        middleware["headers"]["customResponseHeaders"] = {ROUTE_HEADER: version}
    return yaml.safe_dump(config, sort_keys=True), version


def write_route(
    layout: Layout, project: str, deployment_id: str, config: str, version: str
) -> RouteResult:
    """Install `config` as the project's route.

    Idempotent: the route's previous content is kept in the work dir before the first write,
    and never overwritten by a retry; an identical rewrite touches nothing, so Traefik does
    not reload.
    """
    route = layout.route(project)
    record = layout.work(deployment_id) / _PREVIOUS
    if not record.exists():
        previous = route.read_text() if route.exists() else None
        write_atomically(record, json.dumps({"previous": previous}))
    changed = not route.exists() or route.read_text() != config
    if changed:
        route.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(route, config)
    return RouteResult(changed=changed, version=version)


def restore_route(layout: Layout, project: str, deployment_id: str) -> None:
    """Put the project's route back as it was before `deployment_id` wrote it; with no
    previous route, remove it.

    Idempotent: it acts only while the route is still the one this deployment wrote (a later
    deployment's route is left alone), with what the deployment recorded before writing.
    """
    record = layout.work(deployment_id) / _PREVIOUS
    route = layout.route(project)
    if not record.exists() or not route.exists() or deployment_id not in route.read_text():
        return
    previous = json.loads(record.read_text())["previous"]
    if previous is None:
        route.unlink(missing_ok=True)
    elif not route.exists() or route.read_text() != previous:
        write_atomically(route, previous)
