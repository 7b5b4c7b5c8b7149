"""When a workflow ended and where its time went, read from Temporal itself, so every
end-to-end figure ends at the server's close time rather than when a poll noticed it."""

import asyncio
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from slipway.temporal import workflow_status

START_WITHIN = 600.0
"""Seconds a workflow may take to appear (a project's serializer starts it when its turn
comes) before the benchmark gives up on it."""


async def finished(client: Client, workflow_id: str) -> tuple[float, str]:
    """Wait for the workflow, which may not have started yet, to close; its close time (epoch
    seconds, Temporal's: when the client notices does not count) and its failure message (""
    when it succeeded). Until it exists it is looked for less and less often, so that a
    few hundred waiting clients do not load the machine they measure."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = asyncio.get_running_loop().time() + START_WITHIN
    failure = ""
    pause = 0.02
    while True:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            failure = str(err.cause)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{workflow_id} never started") from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
            continue
        break
    described = await handle.describe()
    assert described.close_time is not None
    return described.close_time.timestamp(), failure


async def started_at(client: Client, workflow_id: str) -> float:
    """The workflow's start time, epoch seconds."""
    return (await client.get_workflow_handle(workflow_id).describe()).start_time.timestamp()


async def activity_seconds(client: Client, workflow_id: str) -> dict[str, float]:
    """Seconds from each activity's scheduling to its completion, by activity type (summed
    over attempts and repeats)."""
    return _spent(await client.get_workflow_handle(workflow_id).fetch_history())


def _spent(history: WorkflowHistory) -> dict[str, float]:
    scheduled: dict[int, tuple[str, float]] = {}
    spent: dict[str, float] = defaultdict(float)
    for event in history.events:
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name, since = scheduled[
                event.activity_task_completed_event_attributes.scheduled_event_id
            ]
            spent[name] += at - since
    return dict(spent)


async def closed_if_started(client: Client, workflow_id: str) -> None:
    """Wait for the workflow to close if it was ever started (a project's serializer starts
    only for a deployment that arrives while another runs)."""
    if await workflow_status(client, workflow_id) is not None:
        await finished(client, workflow_id)


async def event_counts(client: Client, workflow_id: str) -> dict[str, int]:
    """How many events of each type the workflow's history holds (none for one that never
    started): each is work and storage for the Temporal server."""
    try:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return {}
    return _counts(history)


def _counts(history: WorkflowHistory) -> dict[str, int]:
    return dict(
        Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
    )


@dataclass(frozen=True)
class Histories:
    """What the histories of many workflows say together (each history read once)."""

    median_activity_seconds: dict[str, float]
    """Each activity type's median seconds over the workflows, to say where time went."""
    median_events: float
    """The median number of history events per workflow."""
    tasks_timed_out: int
    """Workflow tasks that timed out in all of them: each waited past its sticky queue's
    timeout for the worker that ran the one before, and costs a replay of the workflow's
    whole history."""


async def read_histories(client: Client, workflow_ids: list[str]) -> Histories:
    """Read each workflow's history once and sum them up."""
    histories = await asyncio.gather(
        *(client.get_workflow_handle(w).fetch_history() for w in workflow_ids)
    )
    spent = [_spent(h) for h in histories]
    counted = [_counts(h) for h in histories]
    names = sorted({name for one in spent for name in one})
    return Histories(
        median_activity_seconds={
            name: statistics.median(one.get(name, 0.0) for one in spent) for name in names
        },
        median_events=statistics.median(sum(one.values()) for one in counted),
        tasks_timed_out=sum(one.get("WORKFLOW_TASK_TIMED_OUT", 0) for one in counted),
    )
