"""Blocking work on a thread while the activity heartbeats, so a dead worker is noticed within
the heartbeat timeout and a cancellation reaches the work within a second."""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

from activities.adapters.beat import Beat

T = TypeVar("T")


def resumed_details() -> Any:
    """The details the previous attempt last heartbeated, or None on a first attempt."""
    details = activity.info().heartbeat_details
    return details[0] if details else None


async def heartbeating(work: Callable[[Beat], T]) -> T:
    """Run `work` on a thread, heartbeating its details several times per heartbeat timeout
    (at most every second) until it ends. The first beat comes after the first interval,
    not at the start: Temporal's heartbeat timeout already runs from the start, so a worker
    dying at once is noticed all the same, and work that ends within the interval (most
    phases of a redeploy) costs the server no heartbeat write at all."""
    timeout = activity.info().heartbeat_timeout
    interval = min(1.0, timeout.total_seconds() / 4) if timeout else 1.0
    beat = Beat(resumed_details())
    task = asyncio.ensure_future(asyncio.to_thread(work, beat))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
            activity.heartbeat(beat.details)
    except asyncio.CancelledError:
        beat.cancel()
        await asyncio.wait({task})
        raise
