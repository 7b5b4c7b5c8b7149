"""Throughput: N concurrent deployments of distinct projects on one worker process against
N concurrent floor workflows on one floor worker process, and the workers' peak memory."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from bench import floor, sites
from bench.report import Figure, Section
from bench.stack import Stack, rss_bytes
from bench.workflows import closed_if_started, event_counts, finished, read_histories
from slipway.stack.process import Service
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id
from starter import api

FLOOR_QUEUE = "bench-throughput-floor"


@dataclass(frozen=True)
class Run:
    """N workflows started at once on one worker process, until the last one closed."""

    workflows: int
    seconds: float
    failures: int
    first_workflow: str
    peak_rss_bytes: int
    cpu_seconds: dict[str, float]
    median_activity_seconds: dict[str, float]
    median_events: float
    tasks_timed_out: int

    @property
    def per_second(self) -> float:
        return self.workflows / self.seconds

    def cpu_of(self, component: str) -> float:
        """CPU seconds `component` used per workflow."""
        return self.cpu_seconds.get(component, 0.0) / self.workflows

    def cpu_per_workflow(self) -> str:
        """The three components that used the most CPU, in ms per workflow."""
        ranked = sorted(self.cpu_seconds.items(), key=lambda kv: -kv[1])[:3]
        return ", ".join(f"{name} {1000 * used / self.workflows:.0f}" for name, used in ranked)


async def _run(stack: Stack, worker: Service, start: Callable[[], Awaitable[list[str]]]) -> Run:
    """Start the workflows `start` names on a polling `worker` and wait for every one."""
    before = stack.cpu_seconds(worker)
    began = time.time()
    workflow_ids = await start()
    ended = await asyncio.gather(*(finished(stack.client, w) for w in workflow_ids))
    after = stack.cpu_seconds(worker)
    histories = await read_histories(stack.client, workflow_ids)
    return Run(
        workflows=len(workflow_ids),
        seconds=max(at for at, _ in ended) - began,
        failures=sum(1 for _, failure in ended if failure),
        first_workflow=workflow_ids[0],
        peak_rss_bytes=rss_bytes(worker, "VmHWM"),
        cpu_seconds={name: after[name] - before[name] for name in after},
        median_activity_seconds=histories.median_activity_seconds,
        median_events=histories.median_events,
        tasks_timed_out=histories.tasks_timed_out,
    )


async def measure(stack: Stack, count: int) -> Section:
    """The floor first, then Slipway, each on a fresh worker process."""
    tag = uuid.uuid4().hex[:6]

    async def floors() -> list[str]:
        ids = [f"floor-{tag}-{i}" for i in range(count)]
        await asyncio.gather(*(floor.start(stack.client, FLOOR_QUEUE, w) for w in ids))
        return ids

    settings = stack.on_queue("bench-throughput")
    site = sites.one_file(stack.root / "throughput-site", "throughput")

    async def deployments() -> list[str]:
        ids = await asyncio.gather(
            *(
                api.start_deployment(stack.client, settings, site, f"tp-{tag}-{i}")
                for i in range(count)
            )
        )
        return [deployment_workflow_id(d) for d in ids]

    floor_worker = stack.floor_process(FLOOR_QUEUE)
    try:
        await stack.polled(FLOOR_QUEUE, [FLOOR_QUEUE])
        floor_run = await _run(stack, floor_worker, floors)
    finally:
        await asyncio.to_thread(floor_worker.stop)
    worker = stack.worker_process(settings, "throughput-worker")
    serializer = project_workflow_id(f"tp-{tag}-0")
    try:
        await stack.polled(settings.task_queue, [settings.task_queue, settings.host_task_queue])
        slipway_run = await _run(stack, worker, deployments)
        await closed_if_started(stack.client, serializer)  # its whole life: it ends once idle
    finally:
        await asyncio.to_thread(worker.stop)
    floor_events = await event_counts(stack.client, f"floor-{tag}-0")
    deployment_events = await event_counts(stack.client, slipway_run.first_workflow)
    project_events = await event_counts(stack.client, serializer)
    events = slipway_run.median_events + sum(project_events.values())
    return Section(
        "throughput",
        [
            Figure(
                "throughput",
                f"{count} concurrent deployments",
                slipway_run.per_second,
                floor_run.per_second,
                f"raw Temporal, {floor.DEPLOYMENT_ACTIVITIES} no-op activities each",
                "/s",
                at_least=0.5,
                note=f"{slipway_run.failures} failed; CPU ms per deployment: "
                f"{slipway_run.cpu_per_workflow()} (floor: {floor_run.cpu_per_workflow()})",
            ),
            Figure(
                "throughput",
                "Temporal history events / deployment",
                events,
                floor_run.median_events,
                "floor workflow",
                "events",
                at_most=1.2,
                note=_events_note(deployment_events, project_events)
                + f"; workflow tasks timed out on a sticky queue: {slipway_run.tasks_timed_out}"
                f" in {count} deployments (floor: {floor_run.tasks_timed_out})",
            ),
            Figure(
                "throughput",
                "Temporal's CPU / deployment",
                slipway_run.cpu_of("temporal"),
                floor_run.cpu_of("temporal"),
                "floor workflow",
                "s",
                at_most=1.2,
                note=f"the Temporal server's process, over the {count} deployments; the "
                "deployment upserts its phase as a search attribute at each phase (what the "
                "Temporal UI filters on), which the floor does not",
            ),
            Figure(
                "throughput",
                f"worker peak RSS, {count} in flight",
                slipway_run.peak_rss_bytes,
                floor_run.peak_rss_bytes,
                "floor worker",
                "B",
            ),
        ],
        {
            "slipway": asdict(slipway_run),
            "floor": asdict(floor_run),
            "history_events": {
                "floor_workflow": floor_events,
                "deployment_workflow": deployment_events,
                "project_workflow": project_events,
            },
        },
    )


def _events_note(deployment: dict[str, int], project: dict[str, int]) -> str:
    """Where a deployment's history events come from (the first deployment's, each
    workflow's share), and the kinds that have no counterpart in the floor."""
    both = [deployment, project]
    upserts = sum(e.get("UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", 0) for e in both)
    markers = sum(e.get("MARKER_RECORDED", 0) for e in both)
    children = sum(e.get("START_CHILD_WORKFLOW_EXECUTION_INITIATED", 0) for e in both)
    return (
        f"median over the deployments; the first: DeploymentWorkflow "
        f"{sum(deployment.values())}, its project's ProjectWorkflow "
        f"{sum(project.values()) or 'none (started directly)'}; search attribute upserts: "
        f"{upserts} (a patch's marker brings one), patch markers: {markers}, child workflow "
        f"starts: {children}, idle timers: {project.get('TIMER_STARTED', 0)}"
    )
