"""The floor orchestration figures are held against: a workflow that runs N no-op activities
one after another on the same Temporal server, with nothing of Slipway in it. Run as
`python -m bench.floor ADDRESS TASK_QUEUE` it is a worker process of its own, so its memory
can be compared with Slipway's worker."""

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

DEPLOYMENT_ACTIVITIES = 8
"""Activities a DeploymentWorkflow runs: register, pull_source, build, copy_files,
stage_release, update_routes, health_check, activate."""


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Does nothing, so all its cost is Temporal's."""


@workflow.defn(name="BenchFloorWorkflow")
class FloorWorkflow:
    """N no-op activities in sequence, as a deployment runs its phases."""

    @workflow.run
    async def run(self, activities: int) -> None:
        for _ in range(activities):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(minutes=5))


def floor_worker(client: Client, task_queue: str) -> Worker:
    """A worker with the SDK's defaults, as Slipway's workers have."""
    return Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[noop])


async def start(client: Client, task_queue: str, workflow_id: str) -> None:
    """Start one floor workflow with a deployment's number of activities."""
    await client.start_workflow(
        FloorWorkflow.run, DEPLOYMENT_ACTIVITIES, id=workflow_id, task_queue=task_queue
    )


async def run_until_signalled(worker: Worker) -> None:
    """Run `worker` until SIGTERM or SIGINT, then shut it down: how a floor's worker process
    lives, so that a benchmark can start, kill or stop it like Slipway's."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    await stop.wait()
    await worker.shutdown()
    await running


async def _serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    await run_until_signalled(floor_worker(client, task_queue))


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
