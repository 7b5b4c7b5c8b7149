"""DeploymentWorkflow: one deployment through its phases, with compensation on failure and
on cancellation."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from activities.host import HostActivities
    from activities.tracking import TrackingActivities
    from activities.traffic import TrafficActivities
    from slipway.metadata import PhaseMetadata
    from slipway.models import (
        CopyInput,
        DeploymentInput,
        DeploymentProgress,
        EndNotice,
        FailInput,
        HealthInput,
        PhaseInput,
        RetireInput,
        SkipInput,
    )
    from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name
    from slipway.phases import PROGRESS, STATUS, DeploymentType, Mode, Phase, Status
    from slipway.search_attributes import DEPLOYMENT_PHASE, PROJECT_NAME
    from slipway.workflow_ids import notify_workflow_id
    from workflows.notify import NotifyWorkflow
    from workflows.options import (
        Profile,
        bookkeeping_profile,
        cancellation,
        compensation_profile,
        phase_profile,
        retry_policy,
    )

S = TypeVar("S")
A = TypeVar("A")
R = TypeVar("R")


class BakeFailedError(Exception):
    """The release that now serves turned unhealthy within its bake window."""


PROMOTE_PATCH = "promote-preview"
"""Marks the histories in which a promotion adopts the preview's release at copying_files."""

QUIET_END_PATCH = "quiet-end"
"""Marks the histories in which a deployment whose switch found no webhook set announces
its end to no one, instead of starting a NotifyWorkflow that has nowhere to deliver it."""

_TOUCHES_TRAFFIC = frozenset(
    {Phase.CREATING_SYMLINKS, Phase.UPDATING_ROUTES, Phase.HEALTH_CHECK, Phase.ACTIVE}
)
"""Phases after which a failure must put the previous release and route back."""


@workflow.defn(name="DeploymentWorkflow")
class DeploymentWorkflow:
    """Sequences the phase activities of one deployment. Its history is what recovery runs on:
    a worker that dies mid-phase costs a retry of that phase's idempotent activity. Traffic
    moves only at `active`, once the release has proven itself as a candidate."""

    def __init__(self) -> None:
        self._deployment: DeploymentInput | None = None
        self._phase = Phase.QUEUED
        self._status = Status.QUEUED
        self._metadata = PhaseMetadata()
        self._type = DeploymentType.STATIC
        self._has_webhook = True

    @workflow.run
    async def run(self, deployment: DeploymentInput) -> DeploymentProgress:
        try:
            validate_project_name(deployment.project)
            validate_deployment_id(deployment.deployment_id)
            validate_deployment_id(deployment.release)
        except InvalidNameError as err:
            raise ApplicationError(str(err), type="BadInput", non_retryable=True) from None
        self._deployment = deployment
        self._metadata = PhaseMetadata(
            release=deployment.release,
            mode=deployment.mode,
            host_queue=deployment.host_queue,
            server=deployment.server,
            round=deployment.round or None,
            reason=deployment.reason or None,
            env_version=deployment.env_version,
        )
        self._enter(Phase.QUEUED)
        recorded = (
            Status.QUEUED
            if deployment.registered
            else await self._call(
                bookkeeping_profile("registering"), TrackingActivities.register, self._input()
            )
        )
        if (
            recorded not in (None, Status.QUEUED)
            and not deployment.round
            and (deployment.mode is not Mode.ABANDON)
        ):
            # The same deployment submitted again after it ran (a retried request): it runs
            # once. A resume comes with a new round, an orphan's resolution as abandon.
            # (Histories from before registration answered with a status hold None.)
            self._status = recorded
            return self.progress()
        try:
            if deployment.mode is Mode.ABANDON:
                self._phase = deployment.orphaned_in or Phase.QUEUED
                await self._end(Status.FAILED, f"orphaned: {deployment.reason}", attempt=0)
            if deployment.mode is Mode.ROLLBACK:
                self._type = deployment.deployment_type or DeploymentType.STATIC
                for phase in (Phase.PULLING_SOURCE, Phase.BUILDING):
                    await self._skip(phase)
                if deployment.release_from and workflow.patched(PROMOTE_PATCH):
                    await self._phase_call(Phase.COPYING_FILES, HostActivities.adopt_release)
                else:
                    await self._skip(Phase.COPYING_FILES)
            else:
                await self._prepare()
            await self._switch()
            await self._announce(Phase.ACTIVE)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                await self._end(Status.CANCELLED, "cancelled by request", attempt=0)
            message, attempt = _reason(self._phase, err.cause)
            await self._end(Status.FAILED, message, attempt, _origin_stack(err))
        except asyncio.CancelledError:
            await self._end(Status.CANCELLED, "cancelled by request", attempt=0)
        except BakeFailedError as err:
            await self._end(Status.FAILED, str(err), attempt=0)
        return self.progress()

    async def _prepare(self) -> None:
        """pulling_source, building and copying_files."""
        d = self._deployed()
        self._metadata.upload_id = d.upload_id or None
        self._metadata.source_commit = d.source_commit
        if d.git is not None:
            self._metadata.source_url = d.git.url
            self._metadata.source_ref = d.git.ref
        pulled = await self._phase_call(Phase.PULLING_SOURCE, HostActivities.pull_source)
        self._metadata.upload_id = pulled.upload_id
        self._metadata.source_commit = pulled.commit or d.source_commit
        self._metadata.source_ref = pulled.ref or self._metadata.source_ref
        self._metadata.content_digest = pulled.digest
        self._metadata.source_files = pulled.files
        built = await self._phase_call(Phase.BUILDING, HostActivities.build)
        self._type = built.deployment_type
        self._metadata.detected_type = built.detected_type
        self._metadata.deployment_type = built.deployment_type
        self._metadata.image_id = built.image_id
        if self._type is not DeploymentType.STATIC:
            await self._skip(Phase.COPYING_FILES)
            return
        self._enter(Phase.COPYING_FILES)
        copied = await self._run(
            Phase.COPYING_FILES,
            HostActivities.copy_files,
            CopyInput(**self._input().model_dump(), site_root=built.site_root),
        )
        self._metadata.files_copied = copied.files_copied
        self._metadata.total_files = copied.total_files

    async def _switch(self) -> None:
        """creating_symlinks, updating_routes, health_check, then the switch at active."""
        if self._type is DeploymentType.STATIC:
            await self._phase_call(Phase.CREATING_SYMLINKS, HostActivities.stage_release)
        else:
            await self._skip(Phase.CREATING_SYMLINKS)
        routed = await self._phase_call(Phase.UPDATING_ROUTES, HostActivities.update_routes)
        self._metadata.route_version = routed.version
        self._metadata.container_id = routed.container_id
        self._metadata.port = routed.port
        self._enter(Phase.HEALTH_CHECK)
        checked = await self._run(
            Phase.HEALTH_CHECK,
            HostActivities.health_check,
            HealthInput(**self._input().model_dump(), route_version=routed.version),
        )
        self._metadata.url = checked.url
        self._metadata.completed_at = workflow.now().isoformat()
        self._enter(Phase.ACTIVE)
        await _to_the_end(self._go_active())

    async def _go_active(self) -> None:
        """The switch, the bake window, then the previous container retired."""
        switched = await self._run(Phase.ACTIVE, TrafficActivities.activate, self._input())
        self._metadata.previous_release = switched.previous_release
        self._has_webhook = switched.has_webhook
        self._status = Status.ACTIVE
        await self._bake()
        if switched.previous_url:
            retire = RetireInput(deployment=self._deployed(), url=switched.previous_url)
            await self._run(Phase.ACTIVE, TrafficActivities.retire_previous, retire)

    async def _bake(self) -> None:
        """Watch the release that now serves for its bake window: two failed looks in a row,
        or a container restarting in a loop, roll it back to the release before it (which,
        for an app, still runs until the bake is over)."""
        d = self._deployed()
        if d.bake_seconds <= 0:
            return
        ends = workflow.now() + timedelta(seconds=d.bake_seconds)
        failures = 0
        while workflow.now() < ends:
            every = timedelta(seconds=d.bake_probe_seconds)
            await workflow.sleep(min(every, ends - workflow.now()))
            probe = await self._run(Phase.ACTIVE, TrafficActivities.probe_release, self._input())
            failures = 0 if probe.ok else failures + 1
            looping = probe.restarts >= d.restart_limit
            if failures >= 2 or looping:
                why = f"restarted {probe.restarts} times" if looping else probe.detail
                raise BakeFailedError(f"unhealthy within its bake window ({why}); rolled back")

    async def _skip(self, phase: Phase) -> None:
        """Record a phase that does not apply to this deployment as skipped."""
        self._enter(phase)
        skip = SkipInput(**self._input().model_dump(), phase=phase)
        await self._call(
            bookkeeping_profile(f"skipping {phase.value}"), TrackingActivities.skip_phase, skip
        )
        self._cancelled_meanwhile(phase)

    async def _phase_call(self, phase: Phase, method: Callable[[S, PhaseInput], Awaitable[R]]) -> R:
        """Enter a host-bound phase and run its activity with the metadata gathered so far."""
        self._enter(phase)
        return await self._run(phase, method, self._input())

    async def _run(self, phase: Phase, method: Callable[[S, A], Awaitable[R]], arg: A) -> R:
        """Run a phase's activity under the phase's own profile."""
        result = await self._call(phase_profile(phase, self._deployed()), method, arg)
        self._cancelled_meanwhile(phase)
        return result

    def _cancelled_meanwhile(self, phase: Phase) -> None:
        """A cancel that arrived while a phase ran but that it finished anyway still cancels
        the deployment, unless the phase was the switch itself: once traffic has moved and
        the deployment is active, there is nothing left to cancel."""
        if phase is not Phase.ACTIVE and workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("cancelled by request")

    async def _call(self, profile: Profile, method: Callable[[S, A], Awaitable[R]], arg: A) -> R:
        """Run an activity with a profile's options, typed as the activity is."""
        d = self._deployed()
        return await workflow.execute_activity_method(
            method,
            arg,
            schedule_to_close_timeout=profile.deadline,
            heartbeat_timeout=timedelta(seconds=d.heartbeat_timeout_seconds),
            retry_policy=retry_policy(),
            cancellation_type=cancellation(),
            summary=f"{profile.summary}: {d.project}",
            task_queue=d.host_queue if profile.on_host else None,
        )

    async def _end(self, status: Status, message: str, attempt: int, stack: str = "") -> NoReturn:
        """Put the previous release and route back if traffic may have been touched, record
        why the deployment ended, and fail (or cancel) the workflow: it never returns."""
        d = self._deployed()
        ended_in = self._phase
        if ended_in in _TOUCHES_TRAFFIC or d.mode is Mode.ABANDON:
            try:
                await self._call(compensation_profile(), TrafficActivities.restore_previous, d)
            except ActivityError as err:
                self._metadata.compensation_error = _reason(ended_in, err.cause)[0]
        self._metadata.error = message
        self._metadata.stack = stack
        self._metadata.failed_at = workflow.now().isoformat()
        self._metadata.failed_phase = ended_in
        self._metadata.attempt = attempt
        self._status = status
        self._enter(Phase.FAILED)
        failed = FailInput(**self._input().model_dump(), status=status)
        await self._call(
            bookkeeping_profile("recording the end"), TrackingActivities.mark_failed, failed
        )
        await self._announce(ended_in)
        if status is Status.CANCELLED:
            raise asyncio.CancelledError(message)
        raise ApplicationError(f"{ended_in.value} failed: {message}", non_retryable=True)

    async def _announce(self, phase: Phase) -> None:
        """Tell the project's (else the server's) webhook how the deployment ended, once per
        round, without waiting for the delivery: a webhook that is down must not hold up
        the project's next deployment. When the switch found neither webhook set, there is
        no one to tell, and no workflow starts to find that out again."""
        if not workflow.patched("notify-on-end"):
            return
        if not self._has_webhook and workflow.patched(QUIET_END_PATCH):
            return
        d = self._deployed()
        notice = EndNotice(
            deployment_id=d.deployment_id,
            project=d.project,
            round=d.round,
            status=self._status,
            phase=phase,
            error=self._metadata.error,
            commit=self._metadata.source_commit,
            url=self._metadata.url,
        )
        try:
            await workflow.start_child_workflow(
                NotifyWorkflow.run,
                notice,
                id=notify_workflow_id(d.deployment_id, d.round),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Notify: {d.project} {self._status.value}",
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("the end of %s was announced already", d.deployment_id)

    def _deployed(self) -> DeploymentInput:
        assert self._deployment is not None
        return self._deployment

    def _input(self) -> PhaseInput:
        return PhaseInput(deployment=self._deployed(), metadata=self._metadata.model_copy())

    def _enter(self, phase: Phase) -> None:
        """Make the phase visible to queries, the UI's details and search attributes (upserted
        only when they change: a workflow started with them, `deployment_at_start`, enters
        queued without an upsert)."""
        d = self._deployed()
        self._phase = phase
        if phase is not Phase.FAILED:
            self._status = STATUS[phase]
        indexed = workflow.info().typed_search_attributes
        if indexed.get(DEPLOYMENT_PHASE) != phase.value or indexed.get(PROJECT_NAME) != d.project:
            workflow.upsert_search_attributes(
                [DEPLOYMENT_PHASE.value_set(phase.value), PROJECT_NAME.value_set(d.project)]
            )
        workflow.set_current_details(
            f"**{phase.value}** ({PROGRESS[phase]}%) — project {d.project}"
        )

    @workflow.query
    def progress(self) -> DeploymentProgress:
        """Where the deployment is, answered from the workflow's own state."""
        d = self._deployed()
        return DeploymentProgress(
            deployment_id=d.deployment_id,
            project=d.project,
            phase=self._phase,
            progress=PROGRESS[self._phase],
            status=self._status,
            metadata=self._metadata,
        )


async def _to_the_end(work: Awaitable[R]) -> R:
    """Run `work` to its end even if a cancel arrives meanwhile. Once traffic starts to move
    there is nothing left to cancel (a rollback is the way back), so the switch, the bake
    window and retiring the previous container finish, whenever the cancel lands; a failed
    bake still ends the deployment, through its own error."""
    task = asyncio.ensure_future(work)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise


def _reason(phase: Phase, cause: BaseException | None) -> tuple[str, int]:
    """A failed activity's reason in words a person can act on, and the attempt it failed on."""
    if isinstance(cause, TimeoutError) and cause.type is not TimeoutType.HEARTBEAT:
        return f"phase deadline exceeded: {phase.value}", 0
    if isinstance(cause, ApplicationError):
        attempt = 0
        if cause.details and isinstance(cause.details[0], dict):
            attempt = int(cause.details[0].get("attempt", 0))
        return cause.message, attempt
    return str(cause), 0


def _origin_stack(err: BaseException) -> str:
    """The stack trace where the failure began: the deepest cause that carries one."""
    stack = ""
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, FailureError) and current.failure and current.failure.stack_trace:
            stack = current.failure.stack_trace
        current = current.__cause__
    return stack
