"""The deployment and project workflows' decisions, most in under a second: which activities
run and in what order, which phases are entered, when compensation runs, what retries, what
a cancel or a newer deployment does. The workflows run unchanged on the session's Temporal
dev server; their activities are stand-ins (tests/standins.py) under the real names, so a
fault anywhere is one line of a test rather than a broken component and a real wait. What
the real activities do is tested end to end elsewhere; this file tests the choices the
workflows make around them."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from slipway import submission
from slipway.models import DeploymentInput, DeploymentProgress, Mode, ProbeResult
from slipway.phases import Phase, Status
from slipway.search_attributes import DEPLOYMENT_PHASE
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id
from tests.standins import Act, Fault, StandIns
from workflows.deployment import DeploymentWorkflow
from workflows.notify import NotifyWorkflow
from workflows.project import ProjectWorkflow

HEARTBEAT_TIMEOUT = 5.0
"""Long enough that a busy machine never times out a stand-in that heartbeats; a cancel
still reaches one within the worker's heartbeat throttle below."""

HEARTBEAT_THROTTLE = timedelta(milliseconds=200)
"""How often the stand-ins' heartbeats are sent at most: a cancel arrives in the answer to
one, so this bounds how long a cancel takes to reach a phase."""

STATIC_RUN = [
    "register_deployment",
    "pull_source",
    "build",
    "copy_files",
    "stage_release",
    "update_routes",
    "health_check",
    "activate",
]
"""A static site's activities when nothing goes wrong."""

EVERY_PHASE = [p.value for p in Phase if p is not Phase.FAILED]


@dataclass
class Ended:
    """How a deployment's workflow ended: its last progress, the failure it ended with (None
    when it succeeded), and the phases it entered in order."""

    progress: DeploymentProgress
    failure: BaseException | None
    phases: list[str]

    @property
    def message(self) -> str:
        """The failure's message, empty when the deployment succeeded."""
        return str(self.failure) if self.failure else ""

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata as it is stored and shown: camelCase JSON, unknown values left out."""
        dumped = self.progress.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dict(dumped["metadata"])


@dataclass
class Lane:
    """One test's own task queues, with a worker on each running the real workflows and the
    stand-ins, as the real worker splits them."""

    client: Client
    queue: str
    host_queue: str
    standins: StandIns

    def deployment(self, **kw: Any) -> DeploymentInput:
        fields: dict[str, Any] = {
            "deployment_id": str(uuid.uuid4()),
            "project": f"p-{uuid.uuid4().hex[:10]}",
            "upload_id": uuid.uuid4().hex,
            "host_queue": self.host_queue,
            "heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT,
        }
        return DeploymentInput(**(fields | kw))

    async def start(self, deployment: DeploymentInput) -> WorkflowHandle[Any, Any]:
        return await self.client.start_workflow(
            DeploymentWorkflow.run,
            deployment,
            id=deployment_workflow_id(deployment.deployment_id),
            task_queue=self.queue,
        )

    async def run(self, deployment: DeploymentInput) -> Ended:
        return await ended(await self.start(deployment))

    async def submit(self, deployment: DeploymentInput) -> None:
        """Hand the deployment to its project's serializer, as the API does."""
        await submission.submit(self.client, self.queue, deployment)


async def ended(handle: WorkflowHandle[Any, Any]) -> Ended:
    """Wait for a deployment's workflow to end and read how."""
    failure: BaseException | None = None
    try:
        await handle.result()
    except WorkflowFailureError as err:
        failure = err.cause
    progress = await handle.query(DeploymentWorkflow.progress)
    history = await handle.fetch_history()
    phases = [
        json.loads(fields[DEPLOYMENT_PHASE.name].data)
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
        for fields in [
            event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        ]
        if DEPLOYMENT_PHASE.name in fields
    ]
    return Ended(progress, failure, phases)


async def deployment_ended(client: Client, deployment_id: str) -> Ended:
    """The same for a deployment its project's serializer starts: wait until it exists."""
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    for _ in range(300):
        try:
            await handle.describe()
            break
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.05)
    return await ended(handle)


@pytest.fixture
async def lane(client: Client) -> AsyncIterator[Lane]:
    """Fresh task queues for one test, so no other test's workflows or stand-ins meet it."""
    standins = StandIns()
    queue = f"decide-{uuid.uuid4().hex[:12]}"
    host_queue = f"{queue}-host"
    shared = Worker(
        client,
        task_queue=queue,
        workflows=[DeploymentWorkflow, ProjectWorkflow, NotifyWorkflow],
        activities=standins.tracking(),
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )
    host = Worker(
        client,
        task_queue=host_queue,
        workflows=[DeploymentWorkflow, NotifyWorkflow],
        activities=[*standins.host(), *standins.tracking()],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    )
    async with shared, host:
        yield Lane(client, queue, host_queue, standins)


# Phase order


async def test_a_static_site_runs_every_phase_in_order(lane: Lane) -> None:
    """Every phase entered once and every activity run once, both in the declared order."""
    deployment = lane.deployment(source_commit="0123abcd")
    result = await lane.run(deployment)
    assert result.failure is None
    assert lane.standins.names() == STATIC_RUN
    assert result.phases == EVERY_PHASE
    progress = result.progress
    assert (progress.phase, progress.status, progress.progress) == (
        Phase.ACTIVE,
        Status.ACTIVE,
        100,
    )
    meta = result.metadata
    assert meta["uploadId"] == deployment.upload_id
    assert meta["sourceCommit"] == "0123abcd"
    assert meta["deploymentType"] == "static"
    assert meta["routeVersion"] == "route-1"
    assert meta.get("previousRelease") is None
    assert "error" not in meta
    # No bake window was asked for, and nothing served before: nothing to probe or retire.
    assert "probe_release" not in lane.standins.names()


async def test_a_container_skips_copying_files_and_creating_symlinks(lane: Lane) -> None:
    """An app has no files to copy or link: both phases are entered and recorded as skipped,
    and the container that served before is retired once the new one is active."""
    lane.standins.build_type = "container"
    lane.standins.previous_url = "http://127.0.0.1:40001"
    result = await lane.run(lane.deployment())
    assert result.failure is None
    assert lane.standins.names() == [
        "register_deployment",
        "pull_source",
        "build",
        "skip_phase",
        "skip_phase",
        "update_routes",
        "health_check",
        "activate",
        "retire_previous",
    ]
    assert lane.standins.details("skip_phase") == ["copying_files", "creating_symlinks"]
    assert lane.standins.details("retire_previous") == ["http://127.0.0.1:40001"]
    assert result.phases == EVERY_PHASE
    assert result.metadata["containerId"] == "c0ffee"
    assert result.metadata["deploymentType"] == "container"


# Failures and compensation


@pytest.mark.parametrize(
    ("activity_name", "phase", "compensates"),
    [
        ("pull_source", Phase.PULLING_SOURCE, False),
        ("copy_files", Phase.COPYING_FILES, False),
        ("stage_release", Phase.CREATING_SYMLINKS, True),
        ("update_routes", Phase.UPDATING_ROUTES, True),
        ("health_check", Phase.HEALTH_CHECK, True),
        ("activate", Phase.ACTIVE, True),
    ],
)
async def test_a_failed_phase_restores_the_previous_release_only_once_traffic_was_touched(
    lane: Lane, activity_name: str, phase: Phase, compensates: bool
) -> None:
    """Before creating_symlinks nothing a visitor sees has changed, so there is nothing to put
    back; from it on, the previous release and route are restored before the failure is
    recorded."""
    lane.standins.fail(activity_name, "it broke", non_retryable=True)
    result = await lane.run(lane.deployment())
    assert isinstance(result.failure, ApplicationError)
    assert result.message == f"{phase.value} failed: it broke"
    ran = STATIC_RUN[: STATIC_RUN.index(activity_name) + 1]
    ending = ["restore_previous", "mark_failed"] if compensates else ["mark_failed"]
    assert lane.standins.names() == ran + ending
    assert lane.standins.details("mark_failed") == ["failed"]
    assert result.phases == [*EVERY_PHASE[: EVERY_PHASE.index(phase.value) + 1], "failed"]
    progress = result.progress
    assert (progress.phase, progress.status, progress.progress) == (Phase.FAILED, Status.FAILED, 0)
    assert result.metadata["failedPhase"] == phase.value
    assert result.metadata["error"] == "it broke"
    assert result.metadata["attempt"] == 1
    assert "compensationError" not in result.metadata


async def test_a_failed_compensation_is_recorded_and_the_deployment_still_fails(
    lane: Lane,
) -> None:
    """The original failure stays the reason; the compensation's own is kept beside it."""
    lane.standins.fail("health_check", "unhealthy", non_retryable=True)
    lane.standins.fail("restore_previous", "route file locked", non_retryable=True)
    result = await lane.run(lane.deployment())
    assert result.message == "health_check failed: unhealthy"
    assert lane.standins.names()[-2:] == ["restore_previous", "mark_failed"]
    assert result.metadata["compensationError"] == "route file locked"


# Retries


async def test_bad_input_fails_once_without_a_retry(lane: Lane) -> None:
    """BadInput is non-retryable by the retry policy even when the error does not say so;
    building touches no traffic, so nothing is restored."""
    lane.standins.fail("build", "no index.html and no Dockerfile", type="BadInput")
    result = await lane.run(lane.deployment())
    assert result.message == "building failed: no index.html and no Dockerfile"
    assert lane.standins.names() == [*STATIC_RUN[:3], "mark_failed"]
    assert result.metadata["failedPhase"] == "building"
    assert result.metadata["attempt"] == 1


async def test_a_transient_failure_is_retried_and_the_deployment_goes_on(lane: Lane) -> None:
    """Any other failure retries with backoff: the phase runs again and nothing is undone."""
    lane.standins.fail("update_routes", "Traefik is reloading")
    result = await lane.run(lane.deployment())
    assert result.failure is None
    assert [c.attempt for c in lane.standins.calls if c.name == "update_routes"] == [1, 2]
    assert lane.standins.names() == [*STATIC_RUN[:6], *STATIC_RUN[5:]]
    assert result.progress.status is Status.ACTIVE


async def test_a_stalled_activity_is_retried_after_its_heartbeat_timeout(lane: Lane) -> None:
    """The deployment's heartbeat timeout reaches every activity: a hung attempt is given up
    on and retried instead of holding the deployment until the phase deadline."""
    lane.standins.tell("build", Fault(Act.STALL))
    result = await lane.run(lane.deployment(heartbeat_timeout_seconds=1.0))
    assert result.failure is None
    assert [c.attempt for c in lane.standins.calls if c.name == "build"] == [1, 2]
    assert result.progress.status is Status.ACTIVE


async def test_a_phase_past_its_deadline_fails_the_deployment(lane: Lane) -> None:
    """A phase that keeps heartbeating but never ends is stopped by its deadline, and the
    reason says which phase ran out of time."""
    lane.standins.tell("pull_source", Fault(Act.BLOCK, times=None))
    result = await lane.run(lane.deployment(phase_deadlines={"pulling_source": 1.0}))
    assert result.message == "pulling_source failed: phase deadline exceeded: pulling_source"
    assert "restore_previous" not in lane.standins.names()
    assert result.metadata["failedPhase"] == "pulling_source"


async def test_an_invalid_name_fails_before_any_activity(lane: Lane) -> None:
    """A name that would reach the file system or Traefik is refused before anything runs,
    even when the workflow is started directly rather than through the API."""
    handle = await lane.start(lane.deployment(project="../etc"))
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "BadInput"
    assert "invalid project name" in failed.value.cause.message
    assert lane.standins.calls == []


# Cancellation


@pytest.mark.parametrize(
    ("activity_name", "phase", "compensates"),
    [
        ("pull_source", Phase.PULLING_SOURCE, False),
        ("stage_release", Phase.CREATING_SYMLINKS, True),
        ("update_routes", Phase.UPDATING_ROUTES, True),
        ("health_check", Phase.HEALTH_CHECK, True),
    ],
)
async def test_a_cancel_stops_the_phase_and_compensates_once_traffic_was_touched(
    lane: Lane, activity_name: str, phase: Phase, compensates: bool
) -> None:
    """The running phase's activity is cancelled and nothing after it starts; the deployment
    ends cancelled, with the previous release put back once traffic may have moved."""
    lane.standins.tell(activity_name, Fault(Act.BLOCK))
    handle = await lane.start(lane.deployment())
    await lane.standins.entered(activity_name)
    await handle.cancel()
    result = await ended(handle)
    assert isinstance(result.failure, CancelledError)
    ran = STATIC_RUN[: STATIC_RUN.index(activity_name) + 1]
    ending = ["restore_previous", "mark_failed"] if compensates else ["mark_failed"]
    assert lane.standins.names() == ran + ending
    assert lane.standins.details("mark_failed") == ["cancelled"]
    progress = result.progress
    assert (progress.phase, progress.status) == (Phase.FAILED, Status.CANCELLED)
    assert result.metadata["failedPhase"] == phase.value
    assert result.metadata["error"] == "cancelled by request"


@pytest.mark.parametrize(
    ("activity_name", "phase", "compensates"),
    [
        ("build", Phase.BUILDING, False),
        ("health_check", Phase.HEALTH_CHECK, True),
    ],
)
async def test_a_cancel_that_arrives_as_a_phase_finishes_still_cancels(
    lane: Lane, activity_name: str, phase: Phase, compensates: bool
) -> None:
    """A phase may finish its work although the cancel reached it: the deployment must not
    go on to the next phase as if the cancel had been lost."""
    lane.standins.tell(activity_name, Fault(Act.FINISH_ON_CANCEL))
    handle = await lane.start(lane.deployment())
    await lane.standins.entered(activity_name)
    await handle.cancel()
    result = await ended(handle)
    assert isinstance(result.failure, CancelledError)
    ran = STATIC_RUN[: STATIC_RUN.index(activity_name) + 1]
    ending = ["restore_previous", "mark_failed"] if compensates else ["mark_failed"]
    assert lane.standins.names() == ran + ending, "the next phase began after the cancel"
    assert result.progress.status is Status.CANCELLED
    assert result.metadata["failedPhase"] == phase.value


async def test_a_cancel_that_arrives_as_the_switch_finishes_leaves_it_active(lane: Lane) -> None:
    """Once traffic starts to move there is nothing left to cancel: the switch is not
    cancelled, the deployment stays active and the old container is still retired."""
    lane.standins.previous_url = "http://127.0.0.1:40001"
    lane.standins.tell("activate", Fault(Act.HOLD))
    handle = await lane.start(lane.deployment())
    await lane.standins.entered("activate")
    await handle.cancel()
    lane.standins.release("activate")
    result = await ended(handle)
    assert result.failure is None
    assert lane.standins.names() == [*STATIC_RUN, "retire_previous"]
    assert result.progress.status is Status.ACTIVE


# One at a time per project


async def test_the_newest_waiting_deployment_runs_and_the_older_ones_are_superseded(
    lane: Lane,
) -> None:
    """While one deployment runs, three more arrive: only the newest runs after it, and the
    two it replaces are recorded as superseded without a workflow of their own."""
    standins = lane.standins
    first = lane.deployment()
    project = first.project
    waiting = [lane.deployment(project=project) for _ in range(3)]
    newest = waiting[-1]
    standins.tell("pull_source", Fault(Act.HOLD, deployment_id=first.deployment_id))
    await lane.submit(first)
    try:
        await standins.entered("pull_source", first.deployment_id)
        for deployment in waiting:
            await lane.submit(deployment)
        await standins.entered("register_deployment", newest.deployment_id)
        state = await lane.client.get_workflow_handle(project_workflow_id(project)).query(
            ProjectWorkflow.state
        )
        assert state.running == first.deployment_id
        assert state.queued == [d.deployment_id for d in waiting]
        standins.release("pull_source")

        assert (await deployment_ended(lane.client, first.deployment_id)).failure is None
        assert (await deployment_ended(lane.client, newest.deployment_id)).failure is None
        superseded = [c for c in standins.calls if c.name == "supersede"]
        assert [(c.deployment_id, c.detail) for c in superseded] == [
            (d.deployment_id, newest.deployment_id) for d in waiting[:2]
        ]
        for deployment in waiting[:2]:
            assert standins.names(deployment.deployment_id) == ["register_deployment", "supersede"]
            with pytest.raises(RPCError) as missing:
                await lane.client.get_workflow_handle(
                    deployment_workflow_id(deployment.deployment_id)
                ).describe()
            assert missing.value.status is RPCStatusCode.NOT_FOUND, "a superseded one ran"
        assert standins.names(newest.deployment_id) == STATIC_RUN, (
            "registered once, by the serializer: its own workflow does not again"
        )
    finally:
        await lane.client.get_workflow_handle(project_workflow_id(project)).terminate()


async def test_cancel_through_the_project_drops_a_waiting_deployment_and_stops_the_running_one(
    lane: Lane,
) -> None:
    """A waiting deployment is cancelled by dropping it (it never runs); the running one by
    cancelling its workflow."""
    standins = lane.standins
    running = lane.deployment()
    project = running.project
    queued = lane.deployment(project=project)
    standins.tell("pull_source", Fault(Act.BLOCK, deployment_id=running.deployment_id))
    await lane.submit(running)
    serializer = lane.client.get_workflow_handle(project_workflow_id(project))
    try:
        await standins.entered("pull_source", running.deployment_id)
        await lane.submit(queued)
        await standins.entered("register_deployment", queued.deployment_id)
        await serializer.signal(ProjectWorkflow.cancel, queued.deployment_id)
        await standins.entered("mark_failed", queued.deployment_id)
        await serializer.signal(ProjectWorkflow.cancel, running.deployment_id)

        result = await deployment_ended(lane.client, running.deployment_id)
        assert isinstance(result.failure, CancelledError)
        assert standins.names(queued.deployment_id) == ["register_deployment", "mark_failed"]
        assert standins.names(running.deployment_id)[-1] == "mark_failed"
        assert [c.detail for c in standins.calls if c.name == "mark_failed"] == [
            "cancelled",
            "cancelled",
        ]
        # The serializer learns of its child's end a moment after the child has ended.
        for _ in range(100):
            state = await serializer.query(ProjectWorkflow.state)
            if state.running is None:
                break
            await asyncio.sleep(0.05)
        assert (state.running, state.queued) == (None, [])
    finally:
        await serializer.terminate()


async def test_a_finished_deployment_submitted_again_ends_at_once(lane: Lane) -> None:
    """A retried request must not deploy twice: the recorded end stands."""
    deployment = lane.deployment()
    lane.standins.registered[deployment.deployment_id] = Status.ACTIVE
    result = await lane.run(deployment)
    assert result.failure is None
    assert lane.standins.names() == ["register_deployment"]
    assert result.progress.status is Status.ACTIVE


async def test_the_serializer_drops_a_finished_deployment_submitted_again(lane: Lane) -> None:
    """The same through the project's serializer, which records it: no workflow starts."""
    deployment = lane.deployment()
    lane.standins.registered[deployment.deployment_id] = Status.ACTIVE
    serializer = lane.client.get_workflow_handle(project_workflow_id(deployment.project))
    await lane.submit(deployment)
    try:
        await lane.standins.entered("register_deployment", deployment.deployment_id)
        for _ in range(100):
            state = await serializer.query(ProjectWorkflow.state)
            if not state.queued and state.running is None:
                break
            await asyncio.sleep(0.05)
        assert (state.running, state.queued) == (None, [])
        assert lane.standins.names(deployment.deployment_id) == ["register_deployment"]
        with pytest.raises(RPCError) as missing:
            await lane.client.get_workflow_handle(
                deployment_workflow_id(deployment.deployment_id)
            ).describe()
        assert missing.value.status is RPCStatusCode.NOT_FOUND, "it ran twice"
    finally:
        await serializer.terminate()


async def test_a_resume_runs_again_though_the_deployment_was_recorded(lane: Lane) -> None:
    """A resume carries a new round: the recorded failure does not stop it."""
    deployment = lane.deployment(round=1)
    lane.standins.registered[deployment.deployment_id] = Status.FAILED
    result = await lane.run(deployment)
    assert result.failure is None
    assert lane.standins.names() == STATIC_RUN
    assert result.metadata["round"] == 1


async def test_an_abandoned_orphan_puts_back_what_it_replaced_and_fails(lane: Lane) -> None:
    """An orphan may have been anywhere when its worker vanished: it is always compensated,
    and recorded as failed in the phase it was left in."""
    deployment = lane.deployment(
        mode=Mode.ABANDON, orphaned_in=Phase.UPDATING_ROUTES, reason="worker gone"
    )
    lane.standins.registered[deployment.deployment_id] = Status.DEPLOYING
    result = await lane.run(deployment)
    assert result.message == "updating_routes failed: orphaned: worker gone"
    assert lane.standins.names() == ["register_deployment", "restore_previous", "mark_failed"]
    assert result.metadata["failedPhase"] == "updating_routes"


# Rollback


@pytest.mark.parametrize(
    ("deployment_type", "skipped", "switch"),
    [
        (
            "static",
            ["pulling_source", "building", "copying_files"],
            ["stage_release", "update_routes", "health_check", "activate"],
        ),
        (
            "container",
            ["pulling_source", "building", "copying_files", "creating_symlinks"],
            ["update_routes", "health_check", "activate"],
        ),
    ],
)
async def test_a_rollback_skips_pulling_building_and_copying(
    lane: Lane, deployment_type: str, skipped: list[str], switch: list[str]
) -> None:
    """A rollback switches to a kept release: nothing to pull, build or copy (nor, for an
    app, to link), but it is proven healthy before traffic moves, like any deployment."""
    earlier = str(uuid.uuid4())
    result = await lane.run(
        lane.deployment(
            mode=Mode.ROLLBACK,
            upload_id="",
            release_id=earlier,
            deployment_type=deployment_type,
            reason="bad release",
        )
    )
    assert result.failure is None
    names = lane.standins.names()
    assert names == ["register_deployment", *["skip_phase"] * len(skipped), *switch]
    assert lane.standins.details("skip_phase") == skipped
    assert lane.standins.details("activate") == [earlier]
    assert result.phases == EVERY_PHASE
    assert result.metadata["release"] == earlier
    assert result.metadata["mode"] == "rollback"


# The bake window

FAILED_PROBE = ProbeResult(ok=False, detail="502 Bad Gateway")
HEALTHY_PROBE = ProbeResult(ok=True, detail="200")

PROBE_EVERY = 0.3
BAKE_FOR_TWO_PROBES = 2.0
"""Probes every 0.3 s: a window of 2 s holds at least two, however slow a busy machine
makes each step (the stand-ins answer healthy once their list is used up)."""


async def test_two_failed_probes_in_a_row_roll_the_release_back(lane: Lane) -> None:
    """A release that stops answering after the switch is rolled back, and the old
    container, still running through the bake, is what it rolls back to."""
    lane.standins.previous_url = "http://127.0.0.1:40001"
    lane.standins.probes = [FAILED_PROBE, FAILED_PROBE]
    result = await lane.run(
        lane.deployment(bake_seconds=BAKE_FOR_TWO_PROBES, bake_probe_seconds=PROBE_EVERY)
    )
    assert result.message == (
        "active failed: unhealthy within its bake window (502 Bad Gateway); rolled back"
    )
    assert lane.standins.names()[len(STATIC_RUN) :] == [
        "probe_release",
        "probe_release",
        "restore_previous",
        "mark_failed",
    ], "the old container must not be retired before the bake is over"
    assert result.metadata["failedPhase"] == "active"


async def test_one_failed_probe_does_not_roll_back(lane: Lane) -> None:
    """One bad answer is a blip, not a broken release; a good one in between resets it."""
    lane.standins.previous_url = "http://127.0.0.1:40001"
    lane.standins.probes = [FAILED_PROBE, HEALTHY_PROBE]
    result = await lane.run(
        lane.deployment(bake_seconds=BAKE_FOR_TWO_PROBES, bake_probe_seconds=PROBE_EVERY)
    )
    assert result.failure is None
    after = lane.standins.names()[len(STATIC_RUN) :]
    assert after[-1] == "retire_previous"
    assert set(after[:-1]) == {"probe_release"} and len(after) >= 3
    assert result.progress.status is Status.ACTIVE


async def test_a_cancel_during_the_bake_window_leaves_the_release_active(lane: Lane) -> None:
    """The release already serves: a cancel that arrives while it bakes changes nothing,
    and the bake and the retiring of the old container run to their end."""
    lane.standins.previous_url = "http://127.0.0.1:40001"
    lane.standins.probes = [HEALTHY_PROBE, HEALTHY_PROBE]
    lane.standins.tell("probe_release", Fault(Act.HOLD))
    handle = await lane.start(
        lane.deployment(bake_seconds=BAKE_FOR_TWO_PROBES, bake_probe_seconds=PROBE_EVERY)
    )
    await lane.standins.entered("probe_release")
    await handle.cancel()
    lane.standins.release("probe_release")
    result = await ended(handle)
    assert result.failure is None
    assert result.progress.status is Status.ACTIVE
    assert "restore_previous" not in lane.standins.names()
    assert lane.standins.names()[-1] == "retire_previous"


async def test_a_restart_loop_rolls_back_at_the_first_probe(lane: Lane) -> None:
    """A container restarting in a loop may answer between restarts: its restarts count,
    whatever one probe saw."""
    lane.standins.probes = [ProbeResult(ok=True, detail="200", restarts=3)]
    result = await lane.run(
        lane.deployment(bake_seconds=0.5, bake_probe_seconds=PROBE_EVERY, restart_limit=3)
    )
    assert "restarted 3 times" in result.message
    assert lane.standins.names()[len(STATIC_RUN) :] == [
        "probe_release",
        "restore_previous",
        "mark_failed",
    ]


# Notifications


async def test_every_end_is_announced_once(lane: Lane) -> None:
    """Active, failed and cancelled each reach the webhook once, with what a person needs
    and no secret; the deployment does not wait for the delivery."""
    active = await lane.run(lane.deployment())
    lane.standins.tell("update_routes", Fault(Act.FAIL, non_retryable=True, type="BadInput"))
    failed = await lane.run(lane.deployment())
    lane.standins.tell("pull_source", Fault(Act.BLOCK))
    blocked = lane.deployment()
    handle = await lane.start(blocked)
    await lane.standins.entered("pull_source", blocked.deployment_id)
    await handle.cancel()
    cancelled = await ended(handle)
    for _ in range(100):
        if len(lane.standins.notices) >= 3:
            break
        await asyncio.sleep(0.05)
    by_id = {n.deployment_id: n for n in lane.standins.notices}
    assert len(lane.standins.notices) == 3
    assert by_id[active.progress.deployment_id].status is Status.ACTIVE
    assert by_id[failed.progress.deployment_id].phase is Phase.UPDATING_ROUTES
    assert by_id[failed.progress.deployment_id].error == "injected failure"
    assert by_id[cancelled.progress.deployment_id].status is Status.CANCELLED
