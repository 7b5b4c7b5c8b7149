"""What a worker costs while nothing is deployed: its CPU over a fixed idle window with N
projects serving, against the same worker's idle CPU with few.

A worker with nothing to deploy still runs its server's two Schedules: the monitor (a health
probe of every active project through Traefik) and the reconciler (orphans, then the
server's files). Their passes are what an idle worker spends its CPU on, and what should
grow with what changed, not with how many projects there are.

The projects are real static deployments, made through the same worker process on a stack
of this section's own (so its hundreds of routes reach no other section's figures); the
monitor probes them through Traefik and Caddy as in production. Once every deployment and
any project's serializer has ended, and a Schedule interval has passed (the passes that
first meet the new projects belong to that change, not to idleness), the worker process's
CPU seconds (user and system, with its children) are read over a window of a whole number of
Schedule intervals, at 0 projects,
at a few and at many. The figure: idle CPU at many projects against the same window at a few
(target ≤ 2x: a pass whose cost follows the number of projects misses it). The 0-project
window is the floor of what the worker's polling and empty passes cost, kept in the raw
numbers and held against the few-project window."""

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass

from temporalio.client import Client

from bench import sites
from bench.report import Figure, Section
from bench.stack import Stack, process_cpu_seconds
from bench.workflows import closed_if_started, finished
from slipway.settings import Settings
from slipway.stack.process import Service
from slipway.workflow_ids import (
    deployment_workflow_id,
    monitor_schedule_id,
    project_workflow_id,
    reconcile_schedule_id,
)
from starter import api

DEPLOYING_AT_ONCE = 8
"""Deployments started at once while projects are set up: enough to keep the worker busy,
few enough that none waits on a timeout."""

SERVER = "idle"
"""The server the measured worker is: its Schedules are this section's alone."""


@dataclass(frozen=True)
class Window:
    """CPU seconds of each component over one idle window with `projects` serving."""

    projects: int
    seconds: float
    cpu_seconds: dict[str, float]
    passes: int

    @property
    def worker(self) -> float:
        return self.cpu_seconds["worker"]


def _cpu(stack: Stack, worker: Service) -> dict[str, float]:
    used = {s.name: process_cpu_seconds(s) for s in stack.services}
    used["worker"] = process_cpu_seconds(worker)
    return used


async def _passes(client: Client, since: float) -> int:
    """Monitor and reconcile passes of this server that started after `since`."""
    count = 0
    for schedule_id in (monitor_schedule_id(SERVER), reconcile_schedule_id(SERVER)):
        described = await client.get_schedule_handle(schedule_id).describe()
        count += sum(
            1 for action in described.info.recent_actions if action.started_at.timestamp() > since
        )
    return count


async def _window(stack: Stack, worker: Service, projects: int, seconds: float) -> Window:
    """The worker's CPU over `seconds` of idleness, started on a Schedule interval's edge so
    each window holds the same number of passes."""
    before, began = _cpu(stack, worker), time.time()
    await asyncio.sleep(seconds)
    after, ended = _cpu(stack, worker), time.time()
    return Window(
        projects=projects,
        seconds=ended - began,
        cpu_seconds={name: after[name] - before[name] for name in after},
        passes=await _passes(stack.client, began),
    )


async def _deploy(stack: Stack, settings: Settings, names: list[str]) -> None:
    """Deploy a 1-file site of its own to each project, a few at once, then wait until
    any project's serializer has ended (it ends once idle): after that nothing but the
    Schedules runs."""
    gate = asyncio.Semaphore(DEPLOYING_AT_ONCE)

    async def one(project: str) -> None:
        site = sites.one_file(stack.root / "idle-sites" / project, project)
        async with gate:
            deployment_id = await api.start_deployment(stack.client, settings, site, project)
            _, failure = await finished(stack.client, deployment_workflow_id(deployment_id))
        if failure:
            raise RuntimeError(f"deployment of {project} failed: {failure}")

    await asyncio.gather(*map(one, names))
    await asyncio.gather(*(closed_if_started(stack.client, project_workflow_id(p)) for p in names))


async def _on_edge(interval: float) -> None:
    """Sleep until just after the next multiple of `interval` seconds since the epoch, when
    the Schedules (intervals aligned to the epoch) start their passes."""
    await asyncio.sleep(interval - time.time() % interval + 0.2)


async def measure(
    stack: Stack, few: int, many: int, interval: float, window_seconds: float
) -> Section:
    """Windows at 0, `few` and `many` projects, the Schedules running every `interval`
    seconds."""
    settings = stack.on_queue(
        "bench-idle",
        server=SERVER,
        monitor_interval_seconds=interval,
        reconcile_interval_seconds=interval,
    )
    tag = uuid.uuid4().hex[:6]
    names = [f"idle-{tag}-{i}" for i in range(many)]
    worker = stack.worker_process(settings, "idle-worker")
    windows: list[Window] = []
    try:
        await stack.polled(settings.task_queue, [settings.task_queue, settings.host_task_queue])
        deployed = 0
        for size in (0, few, many):
            await _deploy(stack, settings, names[deployed:size])
            deployed = size
            # The first passes after new projects are the passes for that change (the
            # monitor's first look at each); the window is what follows, with nothing new.
            await asyncio.sleep(interval)
            await _on_edge(interval)
            windows.append(await _window(stack, worker, size, window_seconds))
    finally:
        await asyncio.to_thread(worker.stop)
    floor, at_few, at_many = windows
    per_project_ms = 1000 * (at_many.worker - at_few.worker) / (many - few)
    others = ", ".join(
        f"{name} {at_many.cpu_seconds[name] - at_few.cpu_seconds[name]:+.2f} s"
        for name in at_many.cpu_seconds
        if name != "worker"
    )
    return Section(
        "idle",
        [
            Figure(
                "idle",
                f"worker idle CPU, {many} projects, {window_seconds:g} s",
                at_many.worker,
                at_few.worker,
                f"same worker, {few} projects",
                "s",
                at_most=2.0,
                note=f"{at_many.passes} passes (monitor, reconcile every {interval:g} s); "
                f"{per_project_ms:.1f} ms per extra project; "
                f"other components {few} → {many}: {others}",
            ),
            Figure(
                "idle",
                f"worker idle CPU, {few} projects, {window_seconds:g} s",
                at_few.worker,
                floor.worker,
                "same worker, 0 projects",
                "s",
            ),
        ],
        {
            "interval_seconds": interval,
            "windows": [asdict(w) for w in windows],
        },
    )
