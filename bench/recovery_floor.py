"""The floor recovery is held against: one activity that heartbeats as Slipway's copy does,
with the same heartbeat timeout and retry policy, on the same Temporal server, with nothing of
Slipway in it. Run as `python -m bench.recovery_floor ADDRESS TASK_QUEUE` it is a worker
process of its own, SIGKILLed once its first attempt has heartbeated (it creates the marker
file the workflow names then) and replaced by a new one, as Slipway's worker is: what the
retry takes on top of the heartbeat timeout here is Temporal's own (its timeout timer, the
retry's backoff, the dispatch to a new worker's poll)."""

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from bench.floor import run_until_signalled

BEAT_EVERY = 0.25
"""Seconds between heartbeats: Slipway's copy heartbeats at min(1 s, timeout / 4), and the SDK
throttles what it sends to the server either way."""


@activity.defn(name="bench_heartbeating")
async def heartbeating(marker: str) -> int:
    """Heartbeat until killed on the first attempt (creating `marker` after the first beat);
    end a second after it started on a retry (long enough for the benchmark to see it
    running). Returns the attempt that ended."""
    attempt = activity.info().attempt
    if attempt > 1:
        await asyncio.sleep(1.0)
        return attempt
    activity.heartbeat(0)
    await asyncio.to_thread(Path(marker).touch)
    beats = 0
    while True:
        await asyncio.sleep(BEAT_EVERY)
        beats += 1
        activity.heartbeat(beats)


@workflow.defn(name="BenchRecoveryFloorWorkflow")
class RecoveryFloorWorkflow:
    """The one heartbeating activity, with a heartbeat timeout and a first retry interval in
    seconds."""

    @workflow.run
    async def run(self, marker: str, heartbeat: float, first_retry: float) -> int:
        return await workflow.execute_activity(
            heartbeating,
            marker,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=heartbeat),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=first_retry)),
        )


async def _serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[RecoveryFloorWorkflow],
        activities=[heartbeating],
    )
    await run_until_signalled(worker)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))
