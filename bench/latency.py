"""End-to-end latency of a 1-file static deployment, for a new project and a redeploy,
against a raw Temporal workflow with the same number of no-op activities on the same server."""

import statistics
import time
import uuid
from collections import defaultdict
from pathlib import Path

from bench import floor, sites
from bench.report import Figure, Section
from bench.stack import Stack, in_process_workers
from bench.workflows import activity_seconds, finished, started_at
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api

FLOOR_QUEUE = "bench-latency-floor"


async def _floor(stack: Stack) -> float:
    workflow_id = f"floor-{uuid.uuid4().hex}"
    began = time.time()
    await floor.start(stack.client, FLOOR_QUEUE, workflow_id)
    closed, _ = await finished(stack.client, workflow_id)
    return closed - began


async def _deploy(
    stack: Stack, settings: Settings, site: Path, project: str
) -> tuple[float, float, str]:
    """When the API was called, seconds until the deployment's workflow closed, and its id."""
    began = time.time()
    deployment_id = await api.start_deployment(stack.client, settings, site, project)
    closed, failure = await finished(stack.client, deployment_workflow_id(deployment_id))
    if failure:
        raise RuntimeError(f"deployment of {project} failed: {failure}")
    return began, closed - began, deployment_id


async def _breakdown(
    stack: Stack, deployment_id: str, began: float, total: float
) -> dict[str, float]:
    """Where a deployment's seconds went: before its workflow started (upload, serializer,
    register), each activity, and the rest (workflow tasks, queueing)."""
    workflow_id = deployment_workflow_id(deployment_id)
    spent = {
        "before DeploymentWorkflow starts": await started_at(stack.client, workflow_id) - began
    }
    spent.update(await activity_seconds(stack.client, workflow_id))
    spent["workflow tasks and queueing"] = total - sum(spent.values())
    return spent


def _largest(spent: dict[str, float]) -> str:
    name, seconds = max(spent.items(), key=lambda item: item[1])
    return f"most of it in {name}: {seconds:.2f} s"


async def measure(stack: Stack, repeats: int) -> Section:
    """Interleave floor, new project and redeploy `repeats` times after one warm-up of each;
    compare medians."""
    settings = stack.on_queue("bench-latency")
    work = stack.root / "latency"
    floors: list[float] = []
    seconds: dict[str, list[float]] = {"new_project": [], "redeploy": []}
    where: dict[str, dict[str, list[float]]] = {kind: defaultdict(list) for kind in seconds}
    async with in_process_workers(stack, settings, FLOOR_QUEUE):
        await _floor(stack)
        await _deploy(stack, settings, sites.one_file(work / "warm", "warm"), "lat-warm")
        for repeat in range(repeats):
            project = f"lat-{repeat}-{uuid.uuid4().hex[:6]}"
            floors.append(await _floor(stack))
            for kind, text in (("new_project", "v1"), ("redeploy", "v2")):
                site = sites.one_file(work / f"{repeat}-{text}", text)
                began, took, deployment_id = await _deploy(stack, settings, site, project)
                seconds[kind].append(took)
                for name, spent in (await _breakdown(stack, deployment_id, began, took)).items():
                    where[kind][name].append(spent)
    floor_median = statistics.median(floors)
    breakdown = {
        kind: {name: statistics.median(values) for name, values in spent.items()}
        for kind, spent in where.items()
    }
    notes = {kind: _largest(spent) for kind, spent in breakdown.items()}
    against = f"raw Temporal, {floor.DEPLOYMENT_ACTIVITIES} no-op activities"
    return Section(
        "latency",
        [
            Figure(
                "latency",
                "new project, 1 file",
                statistics.median(seconds["new_project"]),
                floor_median,
                against,
                "s",
                note=notes["new_project"],
            ),
            Figure(
                "latency",
                "redeploy, 1 file",
                statistics.median(seconds["redeploy"]),
                floor_median,
                against,
                "s",
                at_most=1.3,
                note=notes["redeploy"],
            ),
        ],
        {
            "floor_seconds": floors,
            "seconds": seconds,
            "breakdown_median_seconds": breakdown,
        },
    )
