"""Connecting to Temporal with the data converter both sides must share."""

from collections.abc import Iterable

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    ResetStickyTaskQueueRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from slipway import tracing
from slipway.settings import Settings


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client of the configured server and namespace, speaking pydantic models; with a
    `runtime`, the SDK's telemetry is that runtime's (see `metrics_runtime`). When tracing
    is on, what it starts carries the current trace (see `slipway.tracing`)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=tracing.client_interceptors(),
    )


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose SDK metrics (task latencies, schedule-to-start, sticky
    cache, pollers) Prometheus can scrape at `bind_address`, durations in seconds."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind_address, durations_as_seconds=True)
        )
    )


async def workflow_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The status of the workflow's latest run; None if no workflow of that id exists."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return None
    return described.status


async def has_pollers(client: Client, task_queue: str, *, activities: bool = False) -> bool:
    """True if some worker polled `task_queue` recently (for workflow or activity tasks)."""
    kind = (
        TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        if activities
        else TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    )
    answer = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=kind,
        )
    )
    return bool(answer.pollers)


async def release_sticky(client: Client, task_queues: Iterable[str]) -> int:
    """Send the next workflow task of every workflow running on these queues to the queue
    itself instead of the sticky queue of the worker that ran it last, which may have died;
    returns how many. A worker calls this when it starts, so it takes over a dead worker's
    workflows at once rather than after the sticky timeout; a live worker's workflows only
    lose their cached state (their next task replays the history)."""
    released = 0
    for queue in task_queues:
        running = f"ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
        async for execution in client.list_workflows(running):
            await client.workflow_service.reset_sticky_task_queue(
                ResetStickyTaskQueueRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=execution.id, run_id=execution.run_id),
                )
            )
            released += 1
    return released
