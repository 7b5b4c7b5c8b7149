"""Recovery after a SIGKILL mid-copy: how long until a new worker moves the deployment to its
next phase, against the heartbeat timeout that decides when Temporal notices the death."""

import asyncio
import time
import uuid

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from bench import sites
from bench.report import Figure, Section
from bench.stack import Stack
from bench.workflows import finished
from slipway import queries
from slipway.phases import PROGRESS, Phase
from slipway.records import transition_key
from slipway.tables import deployment_logs
from slipway.workflow_ids import deployment_workflow_id
from starter import api


async def _copying(stack: Stack, deployment_id: str) -> None:
    """Wait for the first progress write of copying_files: files are landing."""
    while True:
        view = await asyncio.to_thread(queries.get_deployment, stack.engine, deployment_id)
        if view is not None and view.phase is Phase.COPYING_FILES:
            if "filesCopied" in view.metadata:
                return
        elif view is not None and PROGRESS[view.phase] > PROGRESS[Phase.COPYING_FILES]:
            raise RuntimeError("the copy ended before the worker could be killed: add files")
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


async def _last_copy_attempt(stack: Stack, deployment_id: str) -> tuple[float, float, int]:
    """When the last attempt of copy_files started and completed, and its number."""
    handle = stack.client.get_workflow_handle(deployment_workflow_id(deployment_id))
    copy_scheduled = started = 0.0
    attempt = 0
    async for event in handle.fetch_history_events():
        at = event.event_time.ToNanoseconds() / 1e9
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == "copy_files":
                copy_scheduled = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if attributes.scheduled_event_id == copy_scheduled:
                started, attempt = at, attributes.attempt
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and event.activity_task_completed_event_attributes.scheduled_event_id == copy_scheduled
        ):
            return started, at, attempt
    raise RuntimeError("copy_files never completed")


async def measure(stack: Stack, files: int, heartbeat: float) -> Section:
    """Deploy a site of `files` small files on a worker process, SIGKILL it once files are
    landing, start a new worker at once, and time the resumed deployment."""
    settings = stack.on_queue("bench-recovery", heartbeat_timeout_seconds=heartbeat)
    site = sites.tree(stack.root / "recovery-site", files, files * 1000)
    first = stack.worker_process(settings, "recovery-first-worker")
    try:
        await stack.polled(settings.task_queue, [settings.host_task_queue])
        project = f"recover-{uuid.uuid4().hex[:6]}"
        deployment_id = await api.start_deployment(stack.client, settings, site, project)
        await _copying(stack, deployment_id)
    finally:
        first.kill()
    killed = time.time()
    second = stack.worker_process(settings, "recovery-second-worker")
    restarted = time.time()
    try:
        _, failure = await finished(stack.client, deployment_workflow_id(deployment_id))
    finally:
        await asyncio.to_thread(second.stop)
    if failure:
        raise RuntimeError(f"the resumed deployment failed: {failure}")
    retried, copied, attempt = await _last_copy_attempt(stack, deployment_id)
    if attempt < 2:
        raise RuntimeError("the kill missed copy_files: its first attempt completed")
    resumed_at = await asyncio.to_thread(_resumed_at, stack, deployment_id)
    next_phase = await asyncio.to_thread(
        _logged_at, stack, deployment_id, transition_key(Phase.CREATING_SYMLINKS)
    )
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
                ),
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
        },
    )
