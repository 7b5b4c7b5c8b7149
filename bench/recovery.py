"""Recovery after a SIGKILL mid-copy: how long until a new worker moves the deployment to its
next phase, against the heartbeat timeout that decides when Temporal notices the death."""

import asyncio
import time
import uuid

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType

from activities.phases.copying_files import POSITION
from bench import sites
from bench.report import Figure, Section
from bench.stack import Stack
from bench.workflows import finished
from slipway import queries
from slipway.phases import PROGRESS, Phase
from slipway.records import transition_key
from slipway.settings import Settings
from slipway.tables import deployment_logs
from slipway.workflow_ids import deployment_workflow_id
from starter import api


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


async def measure(stack: Stack, files: int, heartbeat: float) -> Section:
    """Deploy a site of `files` small files (more if its copy is over too soon) on a worker
    process, SIGKILL it in the middle of the copy, start a new worker at once, and time the
    resumed deployment."""
    settings = stack.on_queue("bench-recovery", heartbeat_timeout_seconds=heartbeat)
    deployment_id, files = await _killed_mid_copy(stack, settings, files)
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
