"""Asking Traefik for a release as a visitor (or a candidate's prover) would: with each of
the project's names as the Host, the release must answer as itself, through the route version
just written, not merely answer 200: a static release with its marker, an app from its own
container (the port the static server names in its answer)."""

import time
from contextlib import nullcontext

import httpx

from activities.adapters.beat import Beat
from activities.adapters.hosts import Hosts
from activities.adapters.http_client import TIMEOUT, shared
from activities.adapters.releases import ContainerRelease
from activities.adapters.traefik import ROUTE_HEADER, candidate_token
from slipway import metrics
from slipway.errors import UnhealthyError
from slipway.layout import RELEASE_MARKER
from slipway.models import DeploymentInput, HealthResult
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.static_server import CANDIDATE_HEADER, UPSTREAM_HEADER


def wait_until_served(
    proxy: str,
    host: str,
    path: str,
    route_version: str,
    timeout: float,
    beat: Beat,
    *,
    body: str | None = None,
    candidate: str | None = None,
    upstream: int | None = None,
    visited: str | None = None,
) -> HealthResult:
    """Poll `path` through Traefik at `proxy` until it answers 2xx through `route_version`
    (and, with `body`, with that body: a static release's marker names its release; with
    `upstream`, from the container on that port), or fail after `timeout`. With
    `candidate` (a deployment id) the request asks for the release being proven rather than
    the one serving. An `https://` proxy is asked with `host` as the TLS server name too; its
    certificate is not judged here (the route is what is proven: a certificate's state is the
    monitor's to watch). The answer's URL is the host's on `visited`, the entry point a
    visitor reaches it on (`proxy` unless given: a candidate is asked on an entry point of
    its own).

    Idempotent: it only reads.
    """
    url = f"{proxy}{path}"
    headers = {"Host": host}
    if candidate:
        headers[CANDIDATE_HEADER] = candidate
    secure = proxy.startswith("https://")
    target = "candidate" if candidate else "public"
    deadline = time.monotonic() + timeout
    attempts = 0
    last = "no answer yet"
    # A secure entry point is asked with the host as its server name, which a pooled
    # connection to the same address would not carry: it gets a client of its own, which
    # does not judge the certificate (see above: the monitor watches certificates).
    own = httpx.Client(timeout=TIMEOUT, verify=False) if secure else None  # noqa: S501
    with own or nullcontext(shared()) as client:
        while True:
            beat.check()
            attempts += 1
            try:
                with metrics.probe_latency.labels(target).time():
                    answer = client.get(
                        url, headers=headers, extensions={"sni_hostname": host} if secure else None
                    )
                served = answer.text.strip()
                route = answer.headers.get(ROUTE_HEADER)
                port = answer.headers.get(UPSTREAM_HEADER)
                if (
                    answer.is_success
                    and route == route_version
                    and (body is None or served == body)
                    and (upstream is None or port == str(upstream))
                ):
                    shown = visited or proxy
                    scheme, port = shown.split("://", 1)[0], shown.rsplit(":", 1)[-1]
                    public = f"{scheme}://{host}:{port}/"
                    return HealthResult(url=public, attempts=attempts)
                last = f"HTTP {answer.status_code} from route {route}: {served[:80]!r}"
                if upstream is not None:
                    last += f" from port {port} (expected {upstream})"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                raise UnhealthyError(
                    f"{'candidate ' if candidate else ''}{path} was not served as expected for "
                    f"{host} at {url} within {timeout:g}s; last answer: {last}"
                )
            time.sleep(0.1)


def wait_for_route(proxy: str, host: str, version: str, timeout: float, beat: Beat) -> bool:
    """Wait until Traefik answers for `host` through route `version` (whatever the answer):
    before removing what an older route pointed to. False if it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    client = shared()
    while time.monotonic() < deadline:
        beat.check()
        try:
            answer = client.get(f"{proxy}/", headers={"Host": host})
            if answer.headers.get(ROUTE_HEADER) == version:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def release_served(
    settings: Settings,
    deployment: DeploymentInput,
    app: ContainerRelease | None,
    route_version: str,
    timeout: float,
    beat: Beat,
    *,
    candidate: bool,
    hosts: Hosts,
    upstream: int | None = None,
) -> HealthResult:
    """The deployment's release answers through Traefik on every name of the project, its
    base name and each custom domain (over HTTPS once the domain's HTTP redirects there): a
    static one with its own marker, an app on its health path (from the container on port
    `upstream`, when given); as the candidate, or as the public route. All within `timeout`;
    the answer is the base name's."""
    deadline = time.monotonic() + timeout
    token = candidate_token(load_key(settings))
    answers = [
        wait_until_served(
            proxy,
            host,
            app.config.health.path if app else f"/{RELEASE_MARKER}",
            route_version,
            max(0.0, deadline - time.monotonic()),
            beat,
            body=None if app else deployment.release,
            candidate=token if candidate else None,
            upstream=upstream,
            visited=settings.proxy_url if candidate else None,
        )
        for host, proxy in routes_of(settings, hosts, candidate=candidate)
    ]
    return answers[0]


def routes_of(settings: Settings, hosts: Hosts, *, candidate: bool) -> list[tuple[str, str]]:
    """Each name of a project with the entry point it is asked on, its base name first: a
    candidate on the candidate entry point (`candidate_url`, over HTTP), on every name; the
    public route where a visitor reaches it (`proxy_url`, or `secure_url` for a domain
    whose HTTP redirects to HTTPS)."""
    if candidate:
        names = [hosts.base, *(d.name for d in hosts.domains)]
        return [(name, settings.candidate_url) for name in names]
    return [(hosts.base, settings.proxy_url)] + [
        (d.name, settings.secure_url if hosts.secure(d) else settings.proxy_url)
        for d in hosts.domains
    ]
