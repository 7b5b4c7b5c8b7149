"""The static server's (Caddy's) configuration, as Caddy's native JSON.

JSON rather than a Caddyfile: every value a release's rules bring is a JSON string in a
field of its own, so no quoting, newline or brace in it can start a directive or a block;
the only interpretation left is Caddy's placeholders, which `static_rules` refuses.

Which rules a request gets follows the slot it is served from, not the configuration: the
request names its project and slot (a project's own Traefik route sets both headers; for one
the shared route serves, Caddy reads the project from the name and the slot from the lane
header, see `lane_routes`), the slot link picks the
release, and the release holds its rules in a file named by their digest. The
configuration carries the rule sets of every kept release of every project, each matched
by that file's presence in the slot's release. So pointing `next` or `current` at another
release switches its rules in the same rename that switches its files (a candidate is
proven with its own rules, a rollback serves the old ones again), and the configuration
changes, by a graceful reload without dropping a connection, only when a release brings a
rule set that no kept release had (see `activities.adapters.caddy`). Releases with the
default rules hold no file and need no reload.

An app is served through the same Caddy: its project's requests name the slot with another
header (Traefik sets it, and removes the static one), and Caddy proxies them to the container
named in the project's upstream file for that slot, read on every request (see
`activities.adapters.upstreams`), so a new container takes over by a rename, without a reload
anywhere. Each project that ever served an app has a route of its own per slot (a placeholder
cannot name another inside a file's path): the configuration changes when a project first
serves an app. The answer carries the port it came from, so a health check can tell the new
container's answer from the old one's.

Whatever the rules, Slipway's own path (`/.well-known/slipway/`, where the health check
reads the release marker) is served as it is, and no rule can point outside the release:
redirects answer with a location, headers set fields, the SPA fallback and the 404 page
are fixed names in the release's root.
"""

import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from slipway.layout import SLOTS, Layout
from slipway.names import InvalidNameError, validate_project_name
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.static_rules import DEFAULT_RULES, RULES_DIR, SPLAT, Redirect, StaticRules

Json = dict[str, Any]

PROJECT_HEADER = "X-Slipway-Project"
SLOT_HEADER = "X-Slipway-Slot"
APP_HEADER = "X-Slipway-App"
"""Request header naming the slot of an app, whose container Caddy proxies to."""

PROXY_HEADER = "X-Slipway-Proxy"
"""Request header Traefik adds to every request it sends the static server, holding
`proxy_token`: a request without it (one an app sends Caddy straight, over the network they
share in the compose stack) reaches no release and no container, whatever else it names.
Caddy never passes it on to an app."""

LANE_HEADER = "X-Slipway-Lane"
"""Request header the shared route sets on a request for a project's base name: `lane_token`
of the slot it asks for, `current` on the public entry point, `next` on the candidate one.
The static server reads the project from the name and the kind of release from the slot
(see `lane_routes`). Every project's own route removes it."""

CANDIDATE_HEADER = "X-Slipway-Candidate"
"""Request header that sends a request to the candidate release, on the candidate entry
point; its value is the server's candidate token. Caddy never passes it on to an app."""

UPSTREAM_HEADER = "X-Slipway-Upstream"
"""Response header of an app's answer: the port of the container that gave it."""

TRUSTED_PROXIES = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
]
"""Where Traefik reaches Caddy from (loopback, or a private network in the compose stack):
the client address Traefik forwards is kept, so an app sees its visitors as it would from
Traefik alone."""

IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control of a fingerprinted asset: its name changes whenever its content does."""

REVALIDATE = "no-cache"
"""Cache-Control of HTML: kept, but checked with the server (ETag) before every use, so a
new release's pages are seen at once."""


def _fingerprinted() -> str:
    """A file name with a hash-like segment before its extension (`app.3f9a1c2b.js`,
    `index-BxT9kq2L.css`, `chunk.a1b2c3d4.min.js`): 8 or more letters, digits, `-` or `_`
    holding at least one digit, after a `.` or `-`. The digit keeps ordinary words
    (`bootstrap.min.js`) out; RE2 has no lookahead, so the digit's place is spelled out."""
    char = "[A-Za-z0-9_-]"
    places = [f"{char}{{{i}}}[0-9]{char}{{{7 - i},}}" for i in range(7)]
    places.append(f"{char}{{7,}}[0-9]{char}*")
    return rf"/[^/]*[.-](?:{'|'.join(places)})(?:\.[A-Za-z0-9]+)+$"


FINGERPRINTED = _fingerprinted()

_PROJECT = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SLOT = r"^(current|next)$"


def proxy_token(key: bytes) -> str:
    """The value of `PROXY_HEADER`: derived from the server's secret key, so only Traefik's
    routes and Caddy's configuration, both under the home, hold it."""
    return hmac.new(key, b"static-proxy", hashlib.sha256).hexdigest()[:32]


def lane_token(key: bytes, slot: str) -> str:
    """The value of `LANE_HEADER` for `slot`: derived from the server's secret key, so a
    visitor who sends the header through a route that does not remove it (one written before
    it existed) names no slot."""
    return hmac.new(key, f"lane:{slot}".encode(), hashlib.sha256).hexdigest()[:32]


def admin_socket(settings: Settings) -> Path:
    """Caddy's admin endpoint: a unix socket only its owner may open (in the embedded stack,
    in a directory only Slipway's user can enter), since whoever reaches it can load any
    configuration."""
    return settings.static_admin_socket or settings.home / "caddy" / "admin" / "caddy.sock"


def config_file(home: Path) -> Path:
    """The configuration Caddy starts with, kept equal to the one it runs."""
    return home / "caddy" / "caddy.json"


def rule_sets(layout: Layout) -> dict[str, dict[str, StaticRules]]:
    """The rule sets in the kept releases of every project: project → digest → rules. A file
    whose content does not match its name (or does not validate) is left out: it was not
    written by Slipway."""
    found: dict[str, dict[str, StaticRules]] = {}
    if not layout.sites.is_dir():
        return found
    for site in sorted(layout.sites.iterdir()):
        releases = site / "releases"
        if site.is_symlink() or not releases.is_dir() or releases.is_symlink():
            continue
        for release in sorted(releases.iterdir()):
            rules_dir = release / RULES_DIR
            if release.is_symlink() or not rules_dir.is_dir() or rules_dir.is_symlink():
                continue
            for path in sorted(rules_dir.glob("*.json")):
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    rules = StaticRules.model_validate_json(path.read_text())
                except (ValidationError, UnicodeDecodeError):
                    continue
                if path.stem == rules.digest:
                    found.setdefault(site.name, {})[rules.digest] = rules
    return found


def app_projects(layout: Layout) -> list[str]:
    """The projects with a directory of upstream files: those that served an app here."""
    if not layout.upstreams.is_dir():
        return []
    found = []
    for place in sorted(layout.upstreams.iterdir()):
        try:
            validate_project_name(place.name)
        except InvalidNameError:
            continue
        if place.is_dir() and not place.is_symlink():
            found.append(place.name)
    return found


def app_routes(layout: Layout, proxy: str) -> list[Json]:
    """A route per app project and slot for requests Traefik sent (`proxy` is their
    `PROXY_HEADER`), proxying to the container its upstream file names (the file is read on
    every request: a rename moves the slot). The answer names the port it came from; an
    app's own header of that name is replaced. A slot with no file yet (`current`, while a
    project's first deployment is proven) matches no route: its requests get the 404 of a
    name that serves nothing, not a proxy error."""
    routes = []
    for project in app_projects(layout):
        for slot in SLOTS:
            handler = {
                "handler": "reverse_proxy",
                "upstreams": [{"dial": f"{{file.{layout.upstream(project, slot)}}}"}],
                "headers": {
                    "request": {"delete": [PROXY_HEADER, CANDIDATE_HEADER, LANE_HEADER]},
                    "response": {"set": {UPSTREAM_HEADER: ["{http.reverse_proxy.upstream.port}"]}},
                },
            }
            routes.append(
                {
                    "match": [
                        {
                            "header": {
                                PROJECT_HEADER: [project],
                                APP_HEADER: [slot],
                                PROXY_HEADER: [proxy],
                            },
                            "file": {
                                "root": str(layout.upstreams / project),
                                "try_files": [f"/{slot}"],
                            },
                        }
                    ],
                    "handle": [handler],
                    "terminal": True,
                }
            )
    return routes


def lane_routes(settings: Settings, key: bytes) -> list[Json]:
    """For a request the shared route sent (its `LANE_HEADER` one of the slots' tokens, its
    name `<project>.<base domain>`): the project header read from the name, then the slot
    header of an app (the project's upstream file for the slot exists) or of a static
    release (otherwise), as a project's own route would set them. Only one of each pair of
    routes applies (a group), and neither ends the request: the routes after it serve it."""
    layout = settings.layout
    label = len(settings.base_domain.split("."))
    project = f"{{http.request.header.{PROJECT_HEADER}}}"
    routes: list[Json] = []
    for slot in SLOTS:
        lane = {PROXY_HEADER: [proxy_token(key)], LANE_HEADER: [lane_token(key, slot)]}
        named = {
            "handler": "headers",
            "request": {
                "set": {PROJECT_HEADER: [f"{{http.request.host.labels.{label}}}"]},
                "delete": [SLOT_HEADER, APP_HEADER],
            },
        }
        routes.append({"match": [{"header": lane, "host": [f"*.{settings.base_domain}"]}]})
        routes[-1]["handle"] = [named]
        valid = {"header": lane, "header_regexp": {PROJECT_HEADER: {"pattern": _PROJECT}}}
        upstream = {"root": f"{layout.upstreams}/{project}", "try_files": [f"/{slot}"]}
        for kind, match in ((APP_HEADER, {**valid, "file": upstream}), (SLOT_HEADER, valid)):
            routes.append(
                {
                    "group": f"lane-{slot}",
                    "match": [match],
                    "handle": [{"handler": "headers", "request": {"set": {kind: [slot]}}}],
                }
            )
    return routes


def _root(layout: Layout) -> str:
    """The slot the request names: the link to the release it is served from."""
    project, slot = (f"{{http.request.header.{h}}}" for h in (PROJECT_HEADER, SLOT_HEADER))
    return f"{layout.slots}/{project}/{slot}"


def _site_request(proxy: str) -> Json:
    """A request Traefik sent (`proxy` is its `PROXY_HEADER`) whose project and slot headers
    have their valid forms (Traefik sets them; anything else never reaches a file)."""
    return {
        "header": {PROXY_HEADER: [proxy]},
        "header_regexp": {PROJECT_HEADER: {"pattern": _PROJECT}, SLOT_HEADER: {"pattern": _SLOT}},
    }


def _redirect(index: int, redirect: Redirect) -> Json:
    """A redirect route. A prefix rule captures the rest of the path with a named regexp,
    whose capture is the only placeholder in `to`."""
    source, target = redirect.from_, redirect.to
    if source.endswith("*"):
        name = f"redirect{index}"
        match: Json = {"path_regexp": {"name": name, "pattern": f"^{re.escape(source[:-1])}(.*)$"}}
        target = target.replace(SPLAT, f"{{http.regexp.{name}.1}}")
    else:
        match = {"path": [source]}
    handler = {
        "handler": "static_response",
        "status_code": redirect.status,
        "headers": {"Location": [target]},
    }
    return {"match": [match], "handle": [handler]}


def site_routes(rules: StaticRules) -> list[Json]:
    """How one release is served under `rules`, in order: Slipway's own path as it is;
    compression; cache headers; the rules' headers (deferred, so they win over the defaults
    and what the file server sets; in reverse, since the outermost deferred header applies
    last and a later pattern is to win); redirects; the SPA fallback; the files."""
    files: Json = {"handler": "file_server"}
    routes: list[Json] = [
        {"match": [{"path": ["/.well-known/slipway/*"]}], "handle": [files], "terminal": True}
    ]
    if rules.compress:
        routes.append(
            {
                "handle": [
                    {
                        "handler": "encode",
                        "encodings": {"zstd": {}, "gzip": {}},
                        "prefer": ["zstd", "gzip"],
                    }
                ]
            }
        )
    routes.append({"handle": [_html_revalidates()]})
    routes.append(
        {
            "match": [
                {
                    "path_regexp": {"pattern": FINGERPRINTED},
                    "file": {"try_files": ["{http.request.uri.path}"]},
                }
            ],
            "handle": [{"handler": "headers", "response": {"set": {"Cache-Control": [IMMUTABLE]}}}],
        }
    )
    for pattern, fields in reversed(rules.headers.items()):
        response = {"set": {name: [value] for name, value in fields.items()}, "deferred": True}
        routes.append(
            {
                "match": [{"path": [pattern]}],
                "handle": [{"handler": "headers", "response": response}],
            }
        )
    routes.extend(_redirect(i, r) for i, r in enumerate(rules.redirects))
    if rules.spa:
        tried = ["{http.request.uri.path}", "{http.request.uri.path}/", "/index.html"]
        routes.append(
            {
                "match": [{"file": {"try_files": tried}}],
                "handle": [{"handler": "rewrite", "uri": "{http.matchers.file.relative}"}],
            }
        )
    routes.append({"handle": [files]})
    return routes


def _html_revalidates() -> Json:
    """`Cache-Control: no-cache` on an HTML response that no rule gave a Cache-Control."""
    return {
        "handler": "headers",
        "response": {
            "set": {"Cache-Control": [REVALIDATE]},
            "require": {"headers": {"Content-Type": ["text/html*"], "Cache-Control": None}},
            "deferred": True,
        },
    }


def _not_found(layout: Layout, proxy: str) -> Json:
    """A 404 answered with the release's own 404.html, when it has one, with status 404."""
    page = {
        "match": [{"file": {"try_files": ["/404.html"]}}],
        "handle": [
            {"handler": "headers", "response": {"set": {"Cache-Control": [REVALIDATE]}}},
            {"handler": "rewrite", "uri": "/404.html"},
            {"handler": "file_server", "status_code": "{http.error.status_code}"},
        ],
    }
    return {
        "match": [{**_site_request(proxy), "vars": {"{http.error.status_code}": ["404"]}}],
        "handle": [
            {"handler": "vars", "root": _root(layout)},
            {"handler": "subroute", "routes": [page]},
        ],
    }


def _listen(settings: Settings) -> str:
    """Where Caddy listens: on loopback when Traefik reaches it there, else (its own
    container, in the compose stack) on every address of its network namespace."""
    host = "127.0.0.1" if settings.static_address == "127.0.0.1" else ""
    return f"{host}:{settings.static_port}"


def caddy_config(settings: Settings) -> Json:
    """Caddy's whole configuration: one server for every project's releases, each request
    served under the rules of the release its slot points at, and every app project's
    containers."""
    layout = settings.layout
    key = load_key(settings)
    proxy = proxy_token(key)
    dispatch: list[Json] = [{"handle": [{"handler": "vars", "root": _root(layout)}]}]
    for project, sets in rule_sets(layout).items():
        for digest, rules in sets.items():
            dispatch.append(
                {
                    "match": [
                        {
                            "header": {PROJECT_HEADER: [project]},
                            "file": {"try_files": [f"/{RULES_DIR}/{digest}.json"]},
                        }
                    ],
                    "handle": [{"handler": "subroute", "routes": site_routes(rules)}],
                    "terminal": True,
                }
            )
    dispatch.append({"handle": [{"handler": "subroute", "routes": site_routes(DEFAULT_RULES)}]})
    server = {
        "listen": [_listen(settings)],
        "automatic_https": {"disable": True},
        "trusted_proxies": {"source": "static", "ranges": TRUSTED_PROXIES},
        "routes": [
            *lane_routes(settings, key),
            *app_routes(layout, proxy),
            {
                "match": [_site_request(proxy)],
                "handle": [{"handler": "subroute", "routes": dispatch}],
                "terminal": True,
            },
            {"handle": [{"handler": "static_response", "status_code": 404}]},
        ],
        "errors": {"routes": [_not_found(layout, proxy)]},
    }
    return {
        "admin": {"listen": f"unix/{admin_socket(settings)}|0600"},
        "apps": {"http": {"servers": {"static": server}}},
    }


def write_config(settings: Settings) -> Json:
    """Write the configuration Caddy starts with (atomically, by a rename) and return it."""
    config = caddy_config(settings)
    path = config_file(settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if settings.static_admin_socket is None:
        admin = admin_socket(settings).parent
        admin.mkdir(parents=True, exist_ok=True)
        admin.chmod(0o700)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(config, indent=1))
    scratch.replace(path)
    return config
