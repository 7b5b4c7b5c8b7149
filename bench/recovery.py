"""Recovery after a SIGKILL mid-copy: how long until a new worker moves the deployment to its
next phase, against the heartbeat timeout that decides when Temporal notices the death."""

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType, PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.phases.copying_files import POSITION
from bench import sites
from bench.recovery_floor import RecoveryFloorWorkflow
from bench.report import Figure, Section
from bench.stack import Stack
from bench.workflows import finished
from slipway import queries
from slipway.phases import PROGRESS, Phase
from slipway.records import transition_key
from slipway.settings import Settings
from slipway.stack.process import Service
from slipway.tables import deployment_logs
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from workflows.options import FIRST_RETRY

WATCH_EVERY = 0.05
"""Seconds between two looks at the killed activity and the new worker's polls while
recovery is timed: what each step took is known to this much."""


@dataclass
class Steps:
    """When each step of a recovery happened, in epoch seconds; Temporal's own times where it
    keeps them (the last heartbeat it recorded, when it gave the attempt up, when it
    scheduled the retry), the rest as the benchmark saw it."""

    killed: float = 0.0
    last_heartbeat: float = 0.0
    """The first attempt's last heartbeat (or its start) that reached Temporal: its heartbeat
    timeout runs from there."""
    new_worker_polling: float = 0.0
    """When the new worker's first poll of the activity's queue was seen."""
    attempt_failed: float = 0.0
    """When Temporal ended the first attempt (its heartbeat timeout fired)."""
    retry_scheduled: float = 0.0
    """When Temporal put the retry on the queue (the failure plus the retry interval)."""

    def timed_out_late(self, heartbeat: float) -> float:
        """How long after the heartbeat timeout had passed Temporal noticed it."""
        return self.attempt_failed - self.last_heartbeat - heartbeat


def _seconds(stamp: object) -> float:
    seconds = getattr(stamp, "seconds", 0) + getattr(stamp, "nanos", 0) / 1e9
    return float(seconds)


async def _watch(
    client: Client, workflow_id: str, activity_type: str, task_queue: str, worker: Service
) -> Steps:
    """Look at the killed activity every `WATCH_EVERY` until its retry runs (or the workflow
    is gone), and at the queue's pollers until the new worker polls it."""
    steps = Steps()
    handle = client.get_workflow_handle(workflow_id)
    assert worker.process is not None
    identity = f"{worker.process.pid}@"
    while True:
        if not steps.new_worker_polling:
            pollers = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
            if any(p.identity.startswith(identity) for p in pollers.pollers):
                steps.new_worker_polling = time.time()
        try:
            described = await handle.describe()
        except RPCError:
            return steps
        pending = [
            a
            for a in described.raw_description.pending_activities
            if a.activity_type.name == activity_type
        ]
        if not pending:
            return steps
        activity = pending[0]
        if activity.attempt == 1:
            steps.last_heartbeat = max(
                _seconds(activity.last_heartbeat_time), _seconds(activity.last_started_time)
            )
        else:
            # The retry is scheduled the first retry interval after the attempt failed
            # (Temporal leaves the attempt's own end time out after a heartbeat timeout).
            steps.retry_scheduled = _seconds(activity.scheduled_time)
            steps.attempt_failed = steps.retry_scheduled - FIRST_RETRY.total_seconds()
            if (
                activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and steps.new_worker_polling
            ):
                return steps
        await asyncio.sleep(WATCH_EVERY)


class CopyEndedError(RuntimeError):
    """The copy finished before a position of it reached Temporal: too few files to kill
    the worker in the middle of it."""


async def _checkpointed(stack: Stack, deployment_id: str) -> None:
    """Wait until the copy has saved a position (in its work dir, where a retry reads it):
    from then on a retry can resume where the copy was, and a kill tests exactly that."""
    position = stack.settings.layout.work(deployment_id) / POSITION
    while True:
        view = await asyncio.to_thread(queries.get_deployment, stack.engine, deployment_id)
        if view is not None and PROGRESS[view.phase] > PROGRESS[Phase.COPYING_FILES]:
            raise CopyEndedError("the copy ended before the worker could be killed")
        if view is not None and view.phase is Phase.COPYING_FILES and position.exists():
            return
        await asyncio.sleep(0.02)


def _resumed_at(stack: Stack, deployment_id: str) -> object:
    """The entry the retried copy resumed at, as its log row records it (None if it did not
    resume but started over)."""
    with stack.engine.connect() as conn:
        details = conn.execute(
            sa.select(deployment_logs.c.metadata).where(
                deployment_logs.c.deployment_id == deployment_id,
                deployment_logs.c.event_key.like("copy-resumed:%"),
            )
        ).scalar()
    return details.get("next") if details else None


def _logged_at(stack: Stack, deployment_id: str, event_key: str) -> float:
    with stack.engine.connect() as conn:
        at = conn.execute(
            sa.select(deployment_logs.c.timestamp).where(
                deployment_logs.c.deployment_id == deployment_id,
                deployment_logs.c.event_key == event_key,
            )
        ).scalar_one()
    return float(at.timestamp())


async def _last_attempt(
    client: Client, workflow_id: str, activity_type: str
) -> tuple[float, float, int]:
    """When the last attempt of the workflow's activity of this type started and completed,
    and its number."""
    handle = client.get_workflow_handle(workflow_id)
    scheduled = started = 0.0
    attempt = 0
    async for event in handle.fetch_history_events():
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == activity_type:
                scheduled = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if attributes.scheduled_event_id == scheduled:
                started, attempt = at, attributes.attempt
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and event.activity_task_completed_event_attributes.scheduled_event_id == scheduled
        ):
            return started, at, attempt
    raise RuntimeError(f"{activity_type} never completed")


TRIES = 3
"""Sites tried, each with twice the files of the one before, until a copy lasts long enough
to be killed in its middle (how long a copy takes depends on the machine and its load)."""


async def _killed_mid_copy(stack: Stack, settings: Settings, files: int) -> tuple[str, int]:
    """Deploy a site on a worker process and SIGKILL it once a position of the copy reached
    Temporal; the deployment's id and the site's files."""
    for _ in range(TRIES):
        site = sites.tree(stack.root / f"recovery-site-{files}", files, files * 1000)
        first = stack.worker_process(settings, f"recovery-worker-{files}")
        try:
            await stack.polled(settings.task_queue, [settings.host_task_queue])
            project = f"recover-{uuid.uuid4().hex[:6]}"
            deployment_id = await api.start_deployment(stack.client, settings, site, project)
            await _checkpointed(stack, deployment_id)
            return deployment_id, files
        except CopyEndedError:
            files *= 2
        finally:
            first.kill()
    raise CopyEndedError(f"every copy ended before the worker could be killed ({TRIES} sites)")


async def _floor(stack: Stack, heartbeat: float) -> tuple[Steps, float]:
    """Raw Temporal's recovery, killed and replaced as Slipway's worker is: the steps, and
    when the retry started."""
    queue = "bench-recovery-floor"
    marker = stack.root / "recovery-floor-started"
    marker.unlink(missing_ok=True)
    first = stack.recovery_floor_process(queue)
    try:
        await stack.polled(queue, [queue])
        handle = await stack.client.start_workflow(
            RecoveryFloorWorkflow.run,
            args=[str(marker), heartbeat, FIRST_RETRY.total_seconds()],
            id=f"recovery-floor-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        while True:
            if marker.exists():
                break
            await asyncio.sleep(0.02)
    finally:
        first.kill()
    killed = time.time()
    second = stack.recovery_floor_process(queue)
    try:
        steps = await _watch(stack.client, handle.id, "bench_heartbeating", queue, second)
        await handle.result()
    finally:
        await asyncio.to_thread(second.stop)
    steps.killed = killed
    retried, _, attempt = await _last_attempt(stack.client, handle.id, "bench_heartbeating")
    if attempt < 2:
        raise RuntimeError("the floor's first attempt completed: the kill missed it")
    return steps, retried


def _where(steps: Steps, retried: float, heartbeat: float) -> str:
    """Where a recovery's time after the heartbeat timeout went."""
    return (
        f"the last heartbeat Temporal had came {steps.killed - steps.last_heartbeat:.2f} s "
        f"before the kill; Temporal failed the attempt {steps.timed_out_late(heartbeat):.2f} s "
        f"after its heartbeat timeout passed; the retry, due "
        f"{steps.retry_scheduled - steps.attempt_failed:.2f} s later, started "
        f"{retried - steps.retry_scheduled:.2f} s after it was due; the new worker polled "
        f"{steps.new_worker_polling - steps.killed:.2f} s after the kill"
    )


async def measure(stack: Stack, files: int, heartbeat: float) -> Section:
    """Deploy a site of `files` small files (more if its copy is over too soon) on a worker
    process, SIGKILL it in the middle of the copy, start a new worker at once, and time the
    resumed deployment; then the same kill of raw Temporal's heartbeating activity."""
    settings = stack.on_queue("bench-recovery", heartbeat_timeout_seconds=heartbeat)
    deployment_id, files = await _killed_mid_copy(stack, settings, files)
    killed = time.time()
    second = stack.worker_process(settings, "recovery-second-worker")
    restarted = time.time()
    workflow_id = deployment_workflow_id(deployment_id)
    try:
        steps = await _watch(
            stack.client, workflow_id, "copy_files", settings.host_task_queue, second
        )
        _, failure = await finished(stack.client, workflow_id)
    finally:
        await asyncio.to_thread(second.stop)
    steps.killed = killed
    if failure:
        raise RuntimeError(f"the resumed deployment failed: {failure}")
    retried, copied, attempt = await _last_attempt(stack.client, workflow_id, "copy_files")
    if attempt < 2:
        raise RuntimeError("the kill missed copy_files: its first attempt completed")
    resumed_at = await asyncio.to_thread(_resumed_at, stack, deployment_id)
    next_phase = await asyncio.to_thread(
        _logged_at, stack, deployment_id, transition_key(Phase.CREATING_SYMLINKS)
    )
    floor, floor_retried = await _floor(stack, heartbeat)
    against = f"heartbeat timeout ({heartbeat:g} s)"
    # The target: the retry comes within the heartbeat timeout and a second, and the next
    # phase follows as soon as the retried copy has done what was left of its work.
    within = (heartbeat + 1.0) / heartbeat
    return Section(
        "recovery",
        [
            Figure(
                "recovery",
                "SIGKILL → copy_files retried",
                retried - killed,
                heartbeat,
                against,
                "s",
                at_most=within,
                note=f"attempt {attempt}, "
                + (
                    f"resumed at entry {resumed_at}"
                    if resumed_at is not None
                    else "started over: no position heartbeated yet; placed files are linked"
                )
                + f"; {_where(steps, retried, heartbeat)}",
            ),
            Figure(
                "recovery",
                "SIGKILL → next phase, less the retried copy's own work",
                next_phase - killed - (copied - retried),
                heartbeat,
                against,
                "s",
                at_most=within,
                note=f"the retried copy took {copied - retried:.1f} s; then "
                f"{next_phase - copied:.1f} s to the next phase's transition",
            ),
            Figure(
                "recovery",
                "raw Temporal: SIGKILL → heartbeating activity retried",
                floor_retried - floor.killed,
                heartbeat,
                against,
                "s",
                note=f"the floor: same timeout and retry policy, no Slipway; "
                f"{_where(floor, floor_retried, heartbeat)}",
            ),
        ],
        {
            "files": files,
            "heartbeat_timeout_seconds": heartbeat,
            "killed_at": killed,
            "new_worker_started_at": restarted,
            "copy_retried_at": retried,
            "copy_completed_at": copied,
            "copy_attempt": attempt,
            "copy_resumed_at_entry": resumed_at,
            "next_phase_at": next_phase,
            "steps": asdict(steps),
            "floor_steps": asdict(floor),
            "floor_retried_at": floor_retried,
        },
    )
