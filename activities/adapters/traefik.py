"""The project's Traefik routes, written to the file provider's directory.

A project has two routers. The public one (Host only) serves the release that is live; the
candidate one (Host and the candidate header naming a deployment) serves the release being
proven. updating_routes only points the candidate at the new release; the public router
moves at active, once the candidate has passed its health check.
"""

import hashlib
import json
from typing import Any

import yaml
from pydantic import BaseModel

from activities.adapters.docker import container_name
from activities.adapters.files import write_atomically
from slipway.layout import Layout
from slipway.models import RouteResult

_PREVIOUS = "previous-route.json"

ROUTE_HEADER = "X-Slipway-Route"
"""Response header naming the route's version, so a health check knows Traefik has loaded
the route just written and is not still answering from the one before."""

CANDIDATE_HEADER = "X-Slipway-Candidate"
"""Request header that sends a request to the candidate release; its value is the id of the
deployment being proven."""


class Target(BaseModel):
    """Where a router sends requests: a server URL, and for static sites the slot
    (`current` or `next`) the static server roots them at."""

    url: str
    slot: str = ""


def static_target(address: str, port: int, slot: str) -> Target:
    """A static release slot behind Caddy."""
    return Target(url=f"http://{address}:{port}", slot=slot)


def app_target(network: str, project: str, deployment_id: str, port: int) -> Target:
    """Where Traefik reaches a deployment's container: a loopback port on host networking,
    else the container's name on the network they share."""
    if network == "host":
        return Target(url=f"http://127.0.0.1:{port}")
    return Target(url=f"http://{container_name(project, deployment_id)}:{port}")


def _middleware(project: str, target: Target) -> dict[str, Any]:
    headers = {"X-Slipway-Project": project}
    if target.slot:
        headers["X-Slipway-Slot"] = target.slot
    return {"headers": {"customRequestHeaders": headers}}


def render_route(
    project: str, host: str, public: Target | None, candidate: Target, candidate_id: str
) -> tuple[str, str]:
    """The project's Traefik dynamic configuration and its version; with no public target
    (before a project's first deployment goes active) only the candidate router exists."""
    name = f"slipway-{project}"
    routers = {
        f"{name}-candidate": (
            f"Host(`{host}`) && Header(`{CANDIDATE_HEADER}`, `{candidate_id}`)",
            candidate,
        ),
    }
    if public is not None:
        routers[name] = (f"Host(`{host}`)", public)
    config: dict[str, Any] = {"http": {"routers": {}, "middlewares": {}, "services": {}}}
    for router, (rule, target) in routers.items():
        config["http"]["routers"][router] = {
            "rule": rule,
            "entryPoints": ["web"],
            "service": router,
            "middlewares": [router],
        }
        config["http"]["middlewares"][router] = _middleware(project, target)
        config["http"]["services"][router] = {"loadBalancer": {"servers": [{"url": target.url}]}}
    version = hashlib.sha256(yaml.safe_dump(config, sort_keys=True).encode()).hexdigest()[:16]
    for middleware in config["http"]["middlewares"].values():
        middleware["headers"]["customResponseHeaders"] = {ROUTE_HEADER: version}
    return yaml.safe_dump(config, sort_keys=True), version


def public_target(layout: Layout, project: str) -> Target | None:
    """Where the project's public router sends requests now, read back from its route."""
    return _target(layout, project, f"slipway-{project}")


def candidate_target(layout: Layout, project: str) -> Target:
    """Where the project's candidate router sends requests now."""
    found = _target(layout, project, f"slipway-{project}-candidate")
    if found is None:
        raise FileNotFoundError(f"{project} has no candidate route")
    return found


def _target(layout: Layout, project: str, name: str) -> Target | None:
    route = layout.route(project)
    if not route.exists():
        return None
    http = yaml.safe_load(route.read_text())["http"]
    if name not in http["routers"]:
        return None
    slot = http["middlewares"][name]["headers"]["customRequestHeaders"].get("X-Slipway-Slot", "")
    url = http["services"][name]["loadBalancer"]["servers"][0]["url"]
    return Target(url=url, slot=slot)


def version_of(layout: Layout, project: str) -> str | None:
    """The version of the project's route as written, or None without one."""
    route = layout.route(project)
    if not route.exists():
        return None
    for middleware in yaml.safe_load(route.read_text())["http"]["middlewares"].values():
        headers = middleware["headers"].get("customResponseHeaders", {})
        if ROUTE_HEADER in headers:
            return str(headers[ROUTE_HEADER])
    return None


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
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(record, json.dumps({"previous": previous}))
    changed = not route.exists() or route.read_text() != config
    if changed:
        route.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(route, config)
    return RouteResult(changed=changed, version=version)


def restore_route(layout: Layout, project: str, deployment_id: str) -> None:
    """Put the project's route back as it was before `deployment_id` wrote it; with no
    previous route, remove it.

    Idempotent: it acts only while the route is still one this deployment wrote (a later
    deployment's route is left alone), with what the deployment recorded before writing.
    """
    record = layout.work(deployment_id) / _PREVIOUS
    route = layout.route(project)
    if not record.exists() or not route.exists() or deployment_id not in route.read_text():
        return
    previous = json.loads(record.read_text())["previous"]
    if previous is None:
        route.unlink(missing_ok=True)
    elif route.read_text() != previous:
        write_atomically(route, previous)
