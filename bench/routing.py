"""Routing cost against the number of projects on the server: the latency of a static
redeploy and of an app (container) redeploy, the CPU Traefik spends on each, and what one
route write and a request cost it, with 10, 200 and 2,000 projects routed, each held against
the same figure at the smallest size.

A project on its base name alone is served by the shared route (one router per entry point
for every project, sending requests to the static server, which reads the project from the
name), so neither a new project nor a redeploy writes anything Traefik reads, and a request
passes the same routers whatever the number of projects: a static site's slot is a link to
a release, an app's a file naming the container the static server proxies to, which the
redeploy renames into place (a route write would make Traefik's file provider read and parse
every file of its directory again and apply the whole configuration).

The projects besides the two measured ones are set up the way a static project's first
deployment leaves them, without running N deployments: for each, a release directory with a
page and its marker, the `current` and `next` links pointing at it, and its route rendered
and written by Slipway's own routing code (`render_route`, `write_route`: kept beside
Traefik's directory, the shared route serving it). They have no database rows, which
nothing measured here reads.
Their names are one character longer or shorter than the measured projects', in turn: had
they routers of their own (Traefik tries an entry point's routers longest rule first), half
would come before the measured projects' and half after, whatever the size.
Traefik is stopped while they are written and started again afterwards, so that it reads
them once rather than once per file event (N events each reading up to N files would take
minutes at 2,000); before measuring, it must serve the last route written and be idle
again. This benchmark runs first on its stack and removes what it routed (again with
Traefik stopped meanwhile), so the other benchmarks find the server as it was.

Traefik's CPU is the run time of every thread of its process tree (`/proc/<pid>/task/*/
schedstat`, nanoseconds, where `stat`'s clock ticks are too coarse for a few milliseconds):
for a deployment, from its start, with Traefik idle (after the scrape of its reload counter,
which is the benchmark's own work), until 0.3 s after its workflow closed, so a reload that
finishes after the close is counted too (a request through Traefik costs it CPU as well: the
health checks' probes are part of a deployment's figure); for a
route write (one routed project stopped, or started again: its public router's service
changes), until Traefik serves the new route and is idle again. Beside it, the number of
configurations Traefik applied during each deployment (`traefik_config_reloads_total`, its
own Prometheus counter): a file event whose files render the same configuration is read and
parsed but not applied.
"""

import asyncio
import shutil
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from activities.adapters.beat import Beat
from activities.adapters.docker import LABEL_PROJECT, docker_client, ours
from activities.adapters.hosts import hosts_for
from activities.adapters.images import remove_image
from activities.adapters.releases import point
from activities.adapters.traefik import (
    candidate_target,
    install_route,
    remove_route,
    render_route,
    static_target,
    version_of,
    write_route,
)
from activities.adapters.web import wait_for_route
from bench import sites
from bench.report import Figure, Section
from bench.stack import Stack, descendants, in_process_workers
from bench.workflows import activity_seconds, finished
from slipway.layout import RELEASE_MARKER
from slipway.secrets import load_key
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api

AT_MOST = 1.5
"""The target: a redeploy, and Traefik's CPU for it, with 2,000 projects routed costs at most
1.5 times what it costs with 10."""

TAIL_SECONDS = 0.3
"""How long after a deployment's close Traefik's CPU is still counted towards it."""

IDLE_WINDOW = 0.25
"""Traefik is idle when it used under 2% of a core over this many seconds."""

SETTLE_SECONDS = 60.0
"""How long Traefik may take to serve and finish loading the routes written before a size
is measured."""

REQUESTS = 200
"""Requests whose CPU is measured at each size: what any visitor's request costs Traefik."""

KINDS = ("static", "app")
ROUTE_WRITE = "route write"
FIGURES = (*KINDS, ROUTE_WRITE)


def traefik_processes(stack: Stack) -> list[int]:
    """Traefik's process and any process it runs under."""
    traefik = next(s for s in stack.services if s.name == "traefik")
    assert traefik.process is not None
    return descendants(traefik.process.pid)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of every thread of these processes so far (living threads only: Go keeps
    its threads for the life of the process)."""
    used = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                used += int(task.read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
    return used / 1e9


def reloads(settings: Settings) -> int:
    """How many configurations Traefik has applied since it started (its Prometheus
    counter): a route write that changes nothing is read but not applied."""
    url = f"http://127.0.0.1:{settings.traefik_admin_port}/metrics"
    for line in httpx.get(url, timeout=10.0).text.splitlines():
        if line.startswith("traefik_config_reloads_total "):
            return int(float(line.split()[1]))
    raise RuntimeError(f"Traefik's metrics at {url} have no traefik_config_reloads_total")


def _release_of(project: str) -> str:
    """The one release of a routed project, which also names the work dir its route write
    keeps what it replaced in."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"slipway-bench:{project}"))


def route_projects(settings: Settings, names: list[str]) -> None:
    """Give each project a static release, its `current` and `next` links and its route,
    as its first deployment would."""
    layout = settings.layout
    key = load_key(settings)
    for project in names:
        release_id = _release_of(project)
        release = layout.release(project, release_id)
        (release / RELEASE_MARKER).parent.mkdir(parents=True)
        (release / "index.html").write_text(f"<h1>{project}</h1>\n")
        (release / RELEASE_MARKER).write_text(release_id)
        point(layout, project, layout.current(project), release_id, f".current-{release_id}")
        point(layout, project, layout.candidate(project), release_id, f".next-{release_id}")
        public = static_target(settings.static_address, settings.static_port, "current")
        candidate = static_target(settings.static_address, settings.static_port, "next")
        config, version = render_route(
            project, hosts_for(settings, project), public, candidate, key
        )
        write_route(layout, project, release_id, config, version)


def unroute_projects(settings: Settings, names: list[str]) -> None:
    """Remove what `route_projects` made (routes first), so later benchmarks find the server
    as it was."""
    layout = settings.layout
    for project in names:
        remove_route(layout, project)
    for project in names:
        for place in (
            layout.site(project),
            layout.slots / project,
            layout.work(_release_of(project)),
        ):
            shutil.rmtree(place, ignore_errors=True)


@asynccontextmanager
async def _traefik_stopped(stack: Stack) -> AsyncIterator[None]:
    """Traefik stopped for the block (killed: nothing is in flight, and a graceful stop
    waits for idle connections) and started again, ready, after it."""
    traefik = next(s for s in stack.services if s.name == "traefik")
    await asyncio.to_thread(traefik.kill)
    try:
        yield
    finally:
        traefik.start()
        await asyncio.to_thread(traefik.wait_ready)


async def _settle(settings: Settings, traefik: list[int], project: str, version: str) -> float:
    """Wait until Traefik serves `project`'s route `version` (with none, only) and has
    stopped working (under 2% of a core over `IDLE_WINDOW`); returns its CPU seconds per
    second then."""
    host = settings.project_host(project)
    if version:
        loaded = await asyncio.to_thread(
            wait_for_route, settings.proxy_url, host, version, SETTLE_SECONDS, Beat()
        )
        if not loaded:
            raise TimeoutError(f"Traefik did not serve {host}'s route in {SETTLE_SECONDS:g} s")
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        before = cpu_seconds(traefik)
        await asyncio.sleep(IDLE_WINDOW)
        used = cpu_seconds(traefik) - before
        if used < 0.02 * IDLE_WINDOW or time.monotonic() > deadline:
            return used / IDLE_WINDOW


async def _redeploy(
    stack: Stack, settings: Settings, traefik: list[int], site: Path, project: str
) -> tuple[float, float, int, dict[str, float]]:
    """Deploy `site` once Traefik is idle (the last deployment's reloads are not this
    one's): seconds from the API call to the workflow's close, Traefik's CPU seconds
    meanwhile (and for `TAIL_SECONDS` after), the configurations it applied, and each
    activity's seconds."""
    # The counter is read before the CPU is, and Traefik left to finish with it: a scrape of
    # Traefik's metrics, whose size grows with the routers it has, is the benchmark's work,
    # not the deployment's.
    applied = await asyncio.to_thread(reloads, settings)
    await _settle(settings, traefik, project, "")
    cpu = cpu_seconds(traefik)
    began = time.time()
    deployment_id = await api.start_deployment(stack.client, settings, site, project)
    workflow_id = deployment_workflow_id(deployment_id)
    closed, failure = await finished(stack.client, workflow_id)
    if failure:
        raise RuntimeError(f"deployment of {project} failed: {failure}")
    await asyncio.sleep(max(0.0, closed + TAIL_SECONDS - time.time()))
    used = cpu_seconds(traefik) - cpu
    spent = await activity_seconds(stack.client, workflow_id)
    return closed - began, used, await asyncio.to_thread(reloads, settings) - applied, spent


async def _route_write(
    settings: Settings, traefik: list[int], project: str, stopped: bool
) -> tuple[float, float]:
    """Write `project`'s route with its public routers stopped (or started again): seconds
    until Traefik serves it, and Traefik's CPU seconds until it is idle again."""
    layout = settings.layout
    public = static_target(settings.static_address, settings.static_port, "current")
    config, version = render_route(
        project,
        hosts_for(settings, project),
        public,
        candidate_target(layout, project),
        load_key(settings),
        stopped=stopped,
    )
    cpu = cpu_seconds(traefik)
    began = time.monotonic()
    install_route(layout, project, config)
    host = settings.project_host(project)
    await asyncio.to_thread(
        wait_for_route, settings.proxy_url, host, version, SETTLE_SECONDS, Beat()
    )
    served = time.monotonic() - began
    await _settle(settings, traefik, project, "")
    return served, cpu_seconds(traefik) - cpu


def _requests(settings: Settings, traefik: list[int], project: str, count: int) -> float:
    """Traefik's CPU seconds per request for `count` requests for `project`'s public route,
    one after another on one connection, after as many to warm it."""
    url, headers = f"{settings.proxy_url}/", {"Host": settings.project_host(project)}
    with httpx.Client(timeout=10.0) as client:
        for _ in range(count):
            client.get(url, headers=headers).raise_for_status()
        cpu = cpu_seconds(traefik)
        for _ in range(count):
            client.get(url, headers=headers).raise_for_status()
        return (cpu_seconds(traefik) - cpu) / count


def _remove_app(settings: Settings, project: str) -> None:
    """The app project's containers and images, which outlive the stack otherwise."""
    layout = settings.layout
    with docker_client(settings.docker_host) as client:
        selector = ours(layout, f"{LABEL_PROJECT}={project}")
        for container in client.containers.list(all=True, filters=selector):
            container.remove(force=True)
        for image in client.images.list(filters=selector):
            for tag in image.tags:
                remove_image(client, tag)


def _other(suffix: str, i: int) -> str:
    """The name of the `i`th project routed besides the measured ones (`rt-s-<suffix>`,
    `rt-a-<suffix>`, 11 characters): one longer by a character, then one shorter, in turn.
    Traefik tries a request against the routers of an entry point longest rule first (the
    rule's length is its priority), so half the other projects' routers come before the
    measured projects' and half after, at every size: they are measured in the middle, as
    the server's average project, not first (every project's cost but theirs growing with
    the routers) nor last."""
    return f"rt{suffix}{i:04d}" if i % 2 == 0 else f"r{suffix[:5]}{i:04d}"


def _median(values: list[float] | list[int]) -> float:
    return statistics.median(values) if values else 0.0


async def measure(stack: Stack, sizes: tuple[int, ...], repeats: int) -> Section:
    """At each size (projects routed on the server, smallest first), once the routes are
    in place and Traefik is idle, `repeats` static and app redeploys, alternating, then
    `repeats` route writes; medians, each held against the smallest size's. Everything it
    routed is removed at the end."""
    settings = stack.on_queue("bench-routing")
    work = stack.root / "routing"
    suffix = uuid.uuid4().hex[:6]
    projects = {"static": f"rt-s-{suffix}", "app": f"rt-a-{suffix}"}
    make: dict[str, Callable[[Path, str], Path]] = {"static": sites.one_file, "app": sites.app}
    seconds: dict[str, dict[int, list[float]]] = {k: {} for k in FIGURES}
    cpu: dict[str, dict[int, list[float]]] = {k: {} for k in FIGURES}
    phases: dict[str, dict[int, dict[str, float]]] = {k: {} for k in KINDS}
    applied_by: dict[str, dict[int, list[int]]] = {k: {} for k in KINDS}
    idle: dict[int, float] = {}
    per_request: dict[int, float] = {}
    routed_seconds: dict[int, float] = {}
    routed: list[str] = []
    deploys = 0
    traefik = traefik_processes(stack)

    async def deploy(kind: str) -> tuple[float, float, int, dict[str, float]]:
        nonlocal deploys
        deploys += 1
        site = make[kind](work / f"{kind}-{deploys}", f"{kind} v{deploys}")
        return await _redeploy(stack, settings, traefik, site, projects[kind])

    try:
        async with in_process_workers(stack, settings):
            for kind in KINDS:  # the first deployments: a new route, a cold build
                await deploy(kind)
            for size in sizes:
                present = len(list(settings.layout.route_records.glob("*.yml")))
                names = [_other(suffix, len(routed) + i) for i in range(max(0, size - present))]
                routed += names
                began = time.monotonic()
                last = names[-1] if names else projects["static"]
                async with _traefik_stopped(stack):
                    await asyncio.to_thread(route_projects, settings, names)
                traefik = traefik_processes(stack)
                version = version_of(settings.layout, last) or ""
                idle[size] = await _settle(settings, traefik, last, version)
                routed_seconds[size] = time.monotonic() - began
                per_request[size] = await asyncio.to_thread(
                    _requests, settings, traefik, projects["static"], REQUESTS
                )
                spent: dict[str, dict[str, list[float]]] = {k: {} for k in KINDS}
                for kind in FIGURES:
                    seconds[kind][size], cpu[kind][size] = [], []
                for kind in KINDS:
                    applied_by[kind][size] = []
                for _ in range(repeats):
                    for kind in KINDS:
                        took, used, applied, activities = await deploy(kind)
                        seconds[kind][size].append(took)
                        cpu[kind][size].append(used)
                        applied_by[kind][size].append(applied)
                        for name, value in activities.items():
                            spent[kind].setdefault(name, []).append(value)
                for repeat in range(repeats):
                    took, used = await _route_write(settings, traefik, last, repeat % 2 == 0)
                    seconds[ROUTE_WRITE][size].append(took)
                    cpu[ROUTE_WRITE][size].append(used)
                if repeats % 2:  # the project started again, as it was
                    await _route_write(settings, traefik, last, False)
                for kind in KINDS:
                    phases[kind][size] = {n: _median(v) for n, v in spent[kind].items()}
    finally:
        await asyncio.to_thread(_remove_app, settings, projects["app"])
        async with _traefik_stopped(stack):
            await asyncio.to_thread(unroute_projects, settings, [*routed, *projects.values()])
    return Section(
        "routing",
        _figures(sizes, seconds, cpu, applied_by, phases, per_request),
        {
            "sizes": list(sizes),
            "repeats": repeats,
            "seconds": seconds,
            "traefik_cpu_seconds": cpu,
            "traefik_configurations_applied": applied_by,
            "activity_median_seconds": phases,
            "traefik_idle_cpu_per_second": idle,
            "traefik_cpu_seconds_per_request": per_request,
            "seconds_to_route_and_settle": routed_seconds,
        },
    )


def _figures(
    sizes: tuple[int, ...],
    seconds: dict[str, dict[int, list[float]]],
    cpu: dict[str, dict[int, list[float]]],
    applied_by: dict[str, dict[int, list[int]]],
    phases: dict[str, dict[int, dict[str, float]]],
    per_request: dict[int, float],
) -> list[Figure]:
    """Each kind's latency and Traefik CPU at every larger size against the smallest, and
    what a route write and a request cost Traefik: why a redeploy costs it more with more
    projects routed."""
    floor = sizes[0]
    figures = []
    for kind in KINDS:
        for size in sizes[1:]:
            spent = phases[kind][size]
            waits = ", ".join(
                f"{name} {spent.get(name, 0.0) * 1000:.0f} ms"
                for name in ("update_routes", "health_check", "activate")
            )
            figures.append(
                Figure(
                    "routing",
                    f"{kind} redeploy, {size:,} projects routed",
                    _median(seconds[kind][size]),
                    _median(seconds[kind][floor]),
                    f"same at {floor:,}",
                    "s",
                    at_most=AT_MOST,
                    note=waits,
                )
            )
            figures.append(
                Figure(
                    "routing",
                    f"Traefik CPU per {kind} redeploy, {size:,} projects routed",
                    _median(cpu[kind][size]),
                    _median(cpu[kind][floor]),
                    f"same at {floor:,}",
                    "s",
                    at_most=AT_MOST,
                    note=f"configurations applied: {_median(applied_by[kind][size]):g}",
                )
            )
    for size in sizes[1:]:
        served = _median(seconds[ROUTE_WRITE][size]) * 1000
        figures.append(
            Figure(
                "routing",
                f"Traefik CPU per route write, {size:,} projects routed",
                _median(cpu[ROUTE_WRITE][size]),
                _median(cpu[ROUTE_WRITE][floor]),
                f"same at {floor:,}",
                "s",
                note=f"a project stopped or started; served after {served:.0f} ms (file provider)",
            )
        )
        figures.append(
            Figure(
                "routing",
                f"Traefik CPU per request, {size:,} projects routed",
                per_request[size],
                per_request[floor],
                f"same at {floor:,}",
                "s",
                note=f"{REQUESTS} requests for a static site, one after another",
            )
        )
    return figures
