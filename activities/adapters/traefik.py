"""The project's Traefik routes: rendered per project, and given to Traefik only where the
shared route cannot serve them.

Every project's base name (`<project>.<base domain>`, over HTTP) is served by one shared
route (`render_shared`): a public router on the web entry point and a candidate one (the
candidate header with the server's token) on an entry point of its own that only health
checks ask. Both send requests to the static server (Caddy) with a lane header naming the
slot, `current` or `next`; Caddy reads the project from the name and serves the slot: for a
static site a link to a release, for an app a file naming its container (see
`activities.adapters.upstreams`). Traefik tries an entry point's routers in turn, and its file
provider reads every route again on each change, so a router per project made every request
and every new project cost it more the more projects it served; with the shared route a new
project, a redeploy (static or app) and a request cost it the same at any number of projects.

Each project's route is still rendered as its own (two routers on its base name, public and
candidate, each with headers naming the project and the slot) and kept beside Traefik's
directory: it says where the project's routers point, and deployments read it back. When it
is one the shared route serves, its version is the shared route's, and Traefik gets nothing
of it. Otherwise (a custom domain, a preview's HTTPS, a stopped project) Traefik gets the
whole route, whose routers come before the shared ones. Such a route changes only when the
project is stopped or started, switches between a static site and an app, or its names
change.

Each custom domain adds two routers to the public service: one on the HTTPS entry point, with
its certificate (the ACME resolver's, or the one the project brought), and one on HTTP, which
serves until that certificate exists and then redirects to HTTPS, so that a domain whose
certificate cannot be issued still answers. A domain that redirects `www.` answers at that
name too, and sends it to the bare one.

A preview's base name (`<name>--<project>.<base domain>`) has a router on the HTTPS entry
point as well, with a certificate from the ACME resolver; its HTTP keeps serving.
"""

import hashlib
import hmac
import json
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from activities.adapters.certificates import RESOLVER
from activities.adapters.docker import container_name
from activities.adapters.dynamic_yaml import dump_dynamic
from activities.adapters.files import write_atomically
from activities.adapters.hosts import Hosts, RoutedDomain, hosts_for
from activities.adapters.upstreams import read_upstream
from slipway.layout import Layout
from slipway.models import RouteResult
from slipway.names import InvalidNameError, validate_project_name
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.static_server import (
    APP_HEADER,
    CANDIDATE_HEADER,
    LANE_HEADER,
    PROJECT_HEADER,
    PROXY_HEADER,
    SLOT_HEADER,
    lane_token,
    proxy_token,
)

_WRITTEN = "route.written"
"""The route a deployment wrote last, in its work dir: what it owns, until another replaces it."""

_PREVIOUS = "previous-route.json"

ROUTE_HEADER = "X-Slipway-Route"
"""Response header naming the route's version, so a health check knows Traefik has loaded
the route just written and is not still answering from the one before."""

STATE_HEADER = "X-Slipway-State"
"""Response header of a stopped project's answer (503, from a service with no server):
`stopped`, so a visitor or a check can tell a stopped project from a broken one."""

CANDIDATE_ENTRY_POINT = "candidate"
"""The entry point of every candidate router (`Settings.candidate_port`), which only this
server's health checks ask. Traefik tries a request against each router of its entry point in
turn until one matches, so that on the public one a visitor's request would pass every
project's candidate router first (their rules are longer, so they come first); on their own
entry point they cost a visitor nothing, and a candidate's proof passes no public router."""


class Target(BaseModel):
    """Where a router sends requests. A static release: the static server's URL and the slot
    (`current` or `next`) it roots them at. An app: its container's URL, and, for one the
    static server proxies to (`via`, its URL), the slot (`lane`) whose upstream file names
    the container; a route written before apps went through the static server sends
    requests to the container itself (no `via`)."""

    url: str
    slot: str = ""
    via: str = ""
    lane: str = ""

    @property
    def server(self) -> str:
        """The URL Traefik's service sends requests to."""
        return self.via or self.url


def static_target(address: str, port: int, slot: str) -> Target:
    """A static release slot behind Caddy."""
    return Target(url=f"http://{address}:{port}", slot=slot)


def app_target(
    settings: Settings,
    project: str,
    deployment_id: str,
    port: int,
    lane: str,
    name: str | None = None,
) -> Target:
    """A deployment's container (`name`, for one a restart made) served through the static
    server's `lane`: a loopback port on host networking, else the container's name on the
    network they share."""
    via = settings.static_url
    if settings.container_network == "host":
        return Target(url=f"http://127.0.0.1:{port}", via=via, lane=lane)
    host = name or container_name(project, deployment_id)
    return Target(url=f"http://{host}:{port}", via=via, lane=lane)


def _middleware(project: str, target: Target, proxy: str) -> dict[str, Any]:
    """The request headers that tell the static server what to serve: the project, and the
    slot of a static release or of an app; the other slot header is removed (an empty value
    removes it), so no request can name a slot its route does not serve; and `proxy`, which
    the static server requires of every request. A target that is not the static server (a
    container a route written by an earlier version names) gets the project's header alone."""
    headers = {PROJECT_HEADER: project, LANE_HEADER: ""}
    if target.lane:
        headers.update({APP_HEADER: target.lane, SLOT_HEADER: "", PROXY_HEADER: proxy})
    elif target.slot:
        headers.update({SLOT_HEADER: target.slot, APP_HEADER: "", PROXY_HEADER: proxy})
    return {"headers": {"customRequestHeaders": headers}}


def _router(rule: str, service: str, middlewares: list[str], **more: Any) -> dict[str, Any]:
    return {
        "rule": rule,
        "entryPoints": ["web"],
        "service": service,
        "middlewares": middlewares,
        **more,
    }


def _hosts_rule(names: list[str]) -> str:
    rule = " || ".join(f"Host(`{name}`)" for name in names)
    return f"({rule})" if len(names) > 1 else rule


def _domain(http: dict[str, Any], name: str, domain: RoutedDomain, hosts: Hosts) -> None:
    """A custom domain's routers (`_` never occurs in a project's name nor in a domain's,
    so that no two projects' routers share a name). Their priority is explicit and low: the
    candidate router, which matches the same names, always comes first."""
    key = f"{name}_{domain.name}"
    served = [name]
    if domain.redirect_www:
        served = [f"{key}_www", name]
        http["middlewares"][f"{key}_www"] = {
            "redirectRegex": {
                "regex": rf"^(https?)://www\.{re.escape(domain.name)}(:[0-9]+)?(.*)$",
                "replacement": f"${{1}}://{domain.name}${{2}}${{3}}",
                "permanent": True,
            }
        }
    rule = " || ".join(f"Host(`{each}`)" for each in domain.names)
    tls = {} if domain.own_certificate else {"certResolver": RESOLVER}
    http["routers"][f"{key}_tls"] = _router(
        rule, name, served, entryPoints=["websecure"], priority=1, tls=tls
    )
    if hosts.secure(domain):
        port = {} if hosts.https_port == 443 else {"port": str(hosts.https_port)}
        http["middlewares"][f"{name}_https"] = {
            "redirectScheme": {"scheme": "https", "permanent": True, **port}
        }
        served = [f"{name}_https"]
    http["routers"][key] = _router(rule, name, served, priority=1)


def candidate_token(key: bytes) -> str:
    """The value of the candidate header that reaches a candidate router: derived from the
    server's secret key, so nobody outside can guess it, and the same for every deployment
    and project, so that one shared router proves every project's candidate and a redeploy
    renders the same route as before (the candidate is told apart by the release it serves).
    Only this server's health checks send it, and the static server passes it to no app."""
    return hmac.new(key, b"candidate", hashlib.sha256).hexdigest()[:32]


SHARED = "slipway_projects"
"""The name of the shared route's routers, middlewares and service (`_` occurs in no
project's name, so no project's route can define them too)."""


def _base_rule(base_domain: str) -> str:
    """Every name `<project>.<base domain>` a project's name can make."""
    escaped = base_domain.replace(".", r"\.")
    return f"HostRegexp(`^[a-z0-9]([a-z0-9-]{{0,61}}[a-z0-9])?\\.{escaped}$`)"


@lru_cache(maxsize=8)
def render_shared(base_domain: str, server: str, key: bytes) -> tuple[str, str]:
    """The shared route and its version: every project's base name, public on the web entry
    point and candidate (with the `candidate_token`) on the candidate one, sent to the
    static server at `server` with the slot's lane token, from which it reads the project
    (from the name) and serves the slot's release or app (see `static_server.lane_routes`).
    Traefik tries an entry point's routers in turn, so one router for every project keeps
    what a request costs it and what a new project writes (nothing) the same whatever the
    number of projects. Its priority is the lowest: a project with routers of its own (a
    custom domain, a preview's HTTPS, stopped) is served by them. Kept once rendered: every
    project's route the shared route serves carries its version (`render_route`)."""
    config: dict[str, Any] = {"http": {"routers": {}, "middlewares": {}, "services": {}}}
    http = config["http"]
    http["services"][SHARED] = {"loadBalancer": {"servers": [{"url": server}]}}
    base = _base_rule(base_domain)
    candidate = f"{base} && Header(`{CANDIDATE_HEADER}`, `{candidate_token(key)}`)"
    for slot, entry_point, rule in (
        ("current", "web", base),
        ("next", CANDIDATE_ENTRY_POINT, candidate),
    ):
        name = f"{SHARED}_{slot}"
        http["routers"][name] = _router(rule, SHARED, [name], entryPoints=[entry_point], priority=1)
        headers = {PROJECT_HEADER: "", SLOT_HEADER: "", APP_HEADER: ""}
        headers.update({PROXY_HEADER: proxy_token(key), LANE_HEADER: lane_token(key, slot)})
        http["middlewares"][name] = {"headers": {"customRequestHeaders": headers}}
    version = hashlib.sha256(dump_dynamic(config).encode()).hexdigest()[:16]
    for middleware in http["middlewares"].values():
        middleware["headers"]["customResponseHeaders"] = {ROUTE_HEADER: version}
    return dump_dynamic(config), version


def _shared_version(
    project: str, hosts: Hosts, public: Target | None, candidate: Target, key: bytes, stopped: bool
) -> str | None:
    """The shared route's version if it serves this route (its base name alone, public and
    candidate both through the static server, not stopped), else None."""
    if public is None or stopped or hosts.domains or hosts.secure_base:
        return None
    if not (public.via or public.slot) or not (candidate.via or candidate.slot):
        return None
    if public.server != candidate.server or not hosts.base.startswith(f"{project}."):
        return None
    return render_shared(hosts.base.removeprefix(f"{project}."), public.server, key)[1]


def render_route(
    project: str,
    hosts: Hosts,
    public: Target | None,
    candidate: Target,
    key: bytes,
    *,
    stopped: bool = False,
) -> tuple[str, str]:
    """The project's Traefik dynamic configuration and its version (which changes only when
    the configuration does; for a route the shared route serves, see `install_route`, the
    shared route's version, which is what answers); with no public target (a first
    deployment's route as earlier versions wrote it: now the first one routes the public
    names to the still empty `current` slot, see `updating_routes`) only the candidate
    router exists, reached with the `candidate_token`
    (derived, like the static server's `proxy_token`, from the server's secret `key`).
    A `stopped` project's public routers send requests to a service with no server, which
    Traefik answers with 503; its public service stays in the file, naming where it served,
    for when it starts again."""
    name = f"slipway-{project}"
    config: dict[str, Any] = {"http": {"routers": {}, "middlewares": {}, "services": {}}}
    http = config["http"]
    token, proxy = candidate_token(key), proxy_token(key)
    names = [hosts.base, *(d.name for d in hosts.domains)]
    targets = {f"{name}{CANDIDATE}": candidate}
    http["routers"][f"{name}{CANDIDATE}"] = _router(
        f"{_hosts_rule(names)} && Header(`{CANDIDATE_HEADER}`, `{token}`)",
        f"{name}{CANDIDATE}",
        [f"{name}{CANDIDATE}"],
        entryPoints=[CANDIDATE_ENTRY_POINT],
    )
    if public is not None:
        targets[name] = public
        http["routers"][name] = _router(f"Host(`{hosts.base}`)", name, [name])
        if hosts.secure_base:
            http["routers"][f"{name}_tls"] = _router(
                f"Host(`{hosts.base}`)",
                name,
                [name],
                entryPoints=["websecure"],
                tls={"certResolver": RESOLVER},
            )
        for domain in hosts.domains:
            _domain(http, name, domain, hosts)
    for router, target in targets.items():
        http["middlewares"][router] = _middleware(project, target, proxy)
        http["services"][router] = {"loadBalancer": {"servers": [{"url": target.server}]}}
    if public is not None and stopped:
        http["services"][f"{name}{STOPPED}"] = {"loadBalancer": {"servers": []}}
        for router in http["routers"].values():
            if router["service"] == name:
                router["service"] = f"{name}{STOPPED}"
    shared = _shared_version(project, hosts, public, candidate, key, stopped)
    version = shared or hashlib.sha256(dump_dynamic(config).encode()).hexdigest()[:16]
    for router in targets:
        response = {ROUTE_HEADER: version}
        if router == name and stopped:
            response[STATE_HEADER] = "stopped"
        http["middlewares"][router]["headers"]["customResponseHeaders"] = response
    return dump_dynamic(config), version


CANDIDATE = "_candidate"
"""Suffix of a project's candidate router, service and middleware. `_` never occurs in a
project's name, so no project's public names can be another's candidate ones (with `-`,
project `a-candidate`'s public router was named as `a`'s candidate router, and Traefik
drops both routers of a name defined twice)."""

STOPPED = "_stopped"
"""Suffix of the service with no server a stopped project's public routers use (`_` for the
reason `CANDIDATE` gives)."""

_EARLIER_SUFFIXES = {CANDIDATE: "-candidate", STOPPED: "-stopped"}
"""The suffixes routes written by earlier versions use: read back until the project's route
is rendered again."""


def _named(http: dict[str, Any], project: str, suffix: str) -> str:
    """The name a route as written gives the project's router or service with `suffix`."""
    name = f"slipway-{project}{suffix}"
    if name in http["routers"] or name in http["services"]:
        return name
    return f"slipway-{project}{_EARLIER_SUFFIXES[suffix]}"


_READ: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_READ_LOCK = threading.Lock()
_READ_KEPT = 4096
"""Routes whose parsed form is kept: more than a server has projects, and bounded."""


def read_route(route: Path) -> dict[str, Any] | None:
    """The `http` section of a route file, or None without one. A route is only ever
    replaced whole (written elsewhere, then renamed over it), so a file with the same inode,
    modification time and size is the one read before: its parsed form is kept and handed
    out again (read it, never change it), and the monitor's look at every project costs a
    `stat` for each route that did not change."""
    try:
        seen = route.stat()
    except FileNotFoundError:
        return None
    version = (seen.st_ino, seen.st_mtime_ns, seen.st_size)
    with _READ_LOCK:
        kept = _READ.get(route)
    if kept is not None and kept[0] == version:
        return kept[1]
    try:
        text = route.read_text()
    except FileNotFoundError:
        return None
    http: dict[str, Any] = yaml.safe_load(text)["http"]
    with _READ_LOCK:
        if len(_READ) >= _READ_KEPT:
            _READ.clear()
        # Read after the stat: if the file was replaced in between, the next stat differs
        # from this version and the file is read again.
        _READ[route] = (version, http)
    return http


def is_stopped(layout: Layout, project: str) -> bool:
    """True if the project's route says it is stopped: its public router has no server."""
    http = read_route(layout.route(project))
    if http is None:
        return False
    router = http["routers"].get(f"slipway-{project}")
    return router is not None and router["service"] == _named(http, project, STOPPED)


def public_target(layout: Layout, project: str) -> Target | None:
    """Where the project's public router sends requests now, read back from its route."""
    http = read_route(layout.route(project))
    return None if http is None else _target(layout, project, http, f"slipway-{project}")


def candidate_target(layout: Layout, project: str) -> Target:
    """Where the project's candidate router sends requests now."""
    http = read_route(layout.route(project))
    found = None
    if http is not None:
        found = _target(layout, project, http, _named(http, project, CANDIDATE))
    if found is None:
        raise FileNotFoundError(f"{project} has no candidate route")
    return found


def _target(layout: Layout, project: str, http: dict[str, Any], name: str) -> Target | None:
    """A router's target as written: for an app behind the static server, its container
    read from the upstream file of its lane (an empty URL if there is none)."""
    if name not in http["routers"]:
        return None
    headers = http["middlewares"][name]["headers"]["customRequestHeaders"]
    url = http["services"][name]["loadBalancer"]["servers"][0]["url"]
    lane = headers.get(APP_HEADER, "")
    if lane:
        address = read_upstream(layout, project, lane)
        return Target(url=f"http://{address}" if address else "", via=url, lane=lane)
    return Target(url=url, slot=headers.get(SLOT_HEADER, ""))


def version_of(layout: Layout, project: str) -> str | None:
    """The version of the project's route as written, or None without one."""
    return _version(read_route(layout.route(project)))


def _version(http: dict[str, Any] | None) -> str | None:
    """The version a route's answers carry, or None without a route."""
    if http is None:
        return None
    for middleware in http["middlewares"].values():
        headers = middleware.get("headers", {}).get("customResponseHeaders", {})
        if ROUTE_HEADER in headers:
            return str(headers[ROUTE_HEADER])
    return None


def refresh_route(
    layout: Layout, project: str, hosts: Hosts, key: bytes, *, write: bool
) -> RouteResult | None:
    """The project's route rendered again for `hosts` (with the server's secret `key`), its
    routers pointing where they point now (a preview's base name kept on HTTPS, a stopped
    project's staying stopped); written (through a rename) only with `write` and if it
    changed. None without a route (a project that has not deployed here yet: its first
    deployment renders it)."""
    route = layout.route(project)
    http = read_route(route)
    if http is None:
        return None
    public = public_target(layout, project)
    routers = http["routers"]
    hosts = hosts.model_copy(update={"secure_base": f"slipway-{project}_tls" in routers})
    config, version = render_route(
        project,
        hosts,
        public,
        candidate_target(layout, project),
        key,
        stopped=is_stopped(layout, project),
    )
    changed = route.read_text() != config
    if changed and write:
        install_route(layout, project, config)
    return RouteResult(changed=changed, version=version)


def install_route(layout: Layout, project: str, config: str) -> None:
    """Replace the project's route with `config`, then give Traefik what it needs of it:
    nothing, when the shared route (whose version a route the shared route serves carries)
    serves it; else the route itself, in Traefik's directory."""
    route = layout.route(project)
    route.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(route, config, layout.route_scratch)
    _serve(layout, project, config)


def _serve(layout: Layout, project: str, config: str) -> None:
    """Traefik's copy of the project's route kept to what the shared route cannot serve:
    removed when the route carries the shared route's version, else written (only if it
    changed) outside Traefik's watched directory and renamed in: Traefik's file provider
    reads and parses every file of the directory again on each event it sees, so a scratch
    file written beside it (created, written, renamed away) would cost it three more such
    reads. Without a shared route (a stack that has not written one yet) every route is
    served by its own routers."""
    served = layout.served_route(project)
    shared = _version(read_route(layout.shared_route))
    if shared is not None and _version(yaml.safe_load(config)["http"]) == shared:
        served.unlink(missing_ok=True)
    elif not served.exists() or served.read_text() != config:
        served.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(served, config, layout.route_scratch)


def remove_route(layout: Layout, project: str) -> bool:
    """Remove the project's route, Traefik's copy first; True if there was one."""
    layout.served_route(project).unlink(missing_ok=True)
    route = layout.route(project)
    existed = route.exists()
    route.unlink(missing_ok=True)
    return existed


def serve_shared(settings: Settings) -> None:
    """Write the shared route, then give every project's route to Traefik as `install_route`
    does. A route in Traefik's directory with no record beside it (written before routes
    were kept outside it) is taken as the project's route; each is rendered again for this
    server's settings first (its version is the shared route's where that serves it). Done
    again only when the shared route changes (a new base domain, static server or key), as
    the mark beside the routes says.

    Idempotent: every file is written only when its content changes."""
    layout = settings.layout
    key = load_key(settings)
    config, version = render_shared(settings.base_domain, settings.static_url, key)
    shared = layout.shared_route
    if not shared.exists() or shared.read_text() != config:
        shared.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(shared, config, layout.route_scratch)
    mark = layout.route_records / ".shared"
    if mark.exists() and mark.read_text() == version:
        return
    layout.route_records.mkdir(parents=True, exist_ok=True)
    for served in sorted(layout.routes.glob("*.yml")):
        project = _project_of(served)
        if project is not None and not layout.route(project).exists():
            write_atomically(layout.route(project), served.read_text())
    for record in sorted(layout.route_records.glob("*.yml")):
        project = _project_of(record)
        if project is None:
            continue
        refreshed = refresh_route(layout, project, hosts_for(settings, project), key, write=True)
        if refreshed is not None and not refreshed.changed:
            _serve(layout, project, record.read_text())
    write_atomically(mark, version)


def _project_of(route: Path) -> str | None:
    """The project a route file is named after, or None for any other file."""
    try:
        return validate_project_name(route.stem)
    except InvalidNameError:
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
        install_route(layout, project, config)
    write_atomically(layout.work(deployment_id) / _WRITTEN, config)
    return RouteResult(changed=changed, version=version)


def restore_route(layout: Layout, project: str, deployment_id: str) -> None:
    """Put the project's route back as it was before `deployment_id` wrote it; with no
    previous route, remove it.

    Idempotent: it acts only while the route is still the one this deployment wrote (a later
    deployment's route is left alone), with what the deployment recorded before writing.
    """
    record = layout.work(deployment_id) / _PREVIOUS
    route = layout.route(project)
    if not record.exists() or not route.exists():
        return
    written = layout.work(deployment_id) / _WRITTEN
    if written.exists():
        if route.read_text() != written.read_text():
            return
    elif deployment_id not in route.read_text():
        # Recorded before routes were remembered as written: their candidate named them.
        return
    previous = json.loads(record.read_text())["previous"]
    if previous is None:
        remove_route(layout, project)
    elif route.read_text() != previous:
        install_route(layout, project, previous)
