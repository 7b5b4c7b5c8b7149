"""DeploymentWorkflow: one deployment through its phases, with compensation on failure and
on cancellation."""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from activities.host import HostActivities
    from activities.tracking import TrackingActivities
    from slipway.models import (
        CopyInput,
        DeploymentInput,
        DeploymentProgress,
        FailInput,
        HealthInput,
        Metadata,
        Mode,
        PhaseInput,
        RetireInput,
        SkipInput,
    )
    from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name
    from slipway.phases import PROGRESS, STATUS, Phase, Status
    from slipway.search_attributes import DEPLOYMENT_PHASE, PROJECT_NAME
    from workflows.options import HOST_PHASES, deadline, retry_policy

STATIC = "static"

BAKE_PROBE_EVERY = timedelta(seconds=2)
"""How often a release is looked at during its bake window."""


class BakeFailedError(Exception):
    """The release that now serves turned unhealthy within its bake window."""


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
        self._metadata: Metadata = {}
        self._type = STATIC

    @workflow.run
    async def run(self, deployment: DeploymentInput) -> DeploymentProgress:
        try:
            validate_project_name(deployment.project)
            validate_deployment_id(deployment.deployment_id)
            validate_deployment_id(deployment.release)
        except InvalidNameError as err:
            raise ApplicationError(str(err), type="BadInput", non_retryable=True) from None
        self._deployment = deployment
        self._metadata = {
            "release": deployment.release,
            "mode": deployment.mode.value,
            "hostQueue": deployment.host_queue,
            "server": deployment.server,
        }
        if deployment.round:
            self._metadata["round"] = deployment.round
        if deployment.reason:
            self._metadata["reason"] = deployment.reason
        self._enter(Phase.QUEUED)
        recorded = await workflow.execute_activity_method(
            TrackingActivities.register, self._input(), **self._options(Phase.QUEUED)
        )
        if (
            recorded not in (None, Status.QUEUED)
            and not deployment.round
            and (deployment.mode is not Mode.ABANDON)
        ):
            # The same deployment submitted again after it ran (a retried request): it runs
            # once. A resume comes with a new round, an orphan's resolution as abandon.
            self._status = Status(recorded)
            return self.progress()
        try:
            if deployment.mode is Mode.ABANDON:
                self._phase = deployment.orphaned_in or Phase.QUEUED
                await self._end(Status.FAILED, f"orphaned: {deployment.reason}", attempt=0)
            if deployment.mode is Mode.ROLLBACK:
                self._type = deployment.deployment_type or STATIC
                for phase in (Phase.PULLING_SOURCE, Phase.BUILDING, Phase.COPYING_FILES):
                    await self._skip(phase)
                await self._switch()
            else:
                await self._prepare()
                await self._switch()
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
        assert self._deployment is not None
        entry: Metadata = {"uploadId": self._deployment.upload_id}
        if self._deployment.source_commit:
            entry["sourceCommit"] = self._deployment.source_commit
        pulled = await self._host(Phase.PULLING_SOURCE, HostActivities.pull_source, entry)
        built = await self._host(
            Phase.BUILDING,
            HostActivities.build,
            {"contentDigest": pulled.digest, "sourceFiles": pulled.files},
        )
        self._type = built.deployment_type
        self._metadata.update(
            {"detectedType": built.detected_type, "deploymentType": built.deployment_type}
        )
        if built.image_id:
            self._metadata["imageId"] = built.image_id
        if self._type != STATIC:
            await self._skip(Phase.COPYING_FILES)
            return
        self._enter(Phase.COPYING_FILES)
        copied = await self._run(
            Phase.COPYING_FILES,
            HostActivities.copy_files,
            CopyInput(**self._input().model_dump(), site_root=built.site_root),
        )
        self._metadata.update(
            {"filesCopied": copied.files_copied, "totalFiles": copied.total_files}
        )

    async def _switch(self) -> None:
        """creating_symlinks, updating_routes, health_check, then the switch at active."""
        if self._type == STATIC:
            await self._host(Phase.CREATING_SYMLINKS, HostActivities.stage_release, {})
        else:
            await self._skip(Phase.CREATING_SYMLINKS)
        routed = await self._host(Phase.UPDATING_ROUTES, HostActivities.update_routes, {})
        self._metadata["routeVersion"] = routed.version
        if routed.container_id:
            self._metadata.update({"containerId": routed.container_id, "port": routed.port})
        self._enter(Phase.HEALTH_CHECK)
        checked = await self._run(
            Phase.HEALTH_CHECK,
            HostActivities.health_check,
            HealthInput(**self._input().model_dump(), route_version=routed.version),
        )
        self._metadata.update({"url": checked.url, "completedAt": workflow.now().isoformat()})
        self._enter(Phase.ACTIVE)
        switched = await self._run(Phase.ACTIVE, HostActivities.activate, self._input())
        self._metadata["previousRelease"] = switched.previous_release
        self._status = Status.ACTIVE
        await self._bake()
        if switched.previous_url:
            await self._run(
                Phase.ACTIVE,
                HostActivities.retire_previous,
                RetireInput(deployment=self._deployment, url=switched.previous_url),
            )

    async def _bake(self) -> None:
        """Watch the release that now serves for its bake window: two failed looks in a row,
        or a container restarting in a loop, roll it back to the release before it (which,
        for an app, still runs until the bake is over)."""
        assert self._deployment is not None
        if self._deployment.bake_seconds <= 0:
            return
        ends = workflow.now() + timedelta(seconds=self._deployment.bake_seconds)
        failures = 0
        while workflow.now() < ends:
            await workflow.sleep(min(BAKE_PROBE_EVERY, ends - workflow.now()))
            probe = await self._run(Phase.ACTIVE, HostActivities.probe_release, self._input())
            failures = 0 if probe.ok else failures + 1
            looping = probe.restarts >= self._deployment.restart_limit
            if failures >= 2 or looping:
                why = f"restarted {probe.restarts} times" if looping else probe.detail
                raise BakeFailedError(f"unhealthy within its bake window ({why}); rolled back")

    async def _skip(self, phase: Phase) -> None:
        """Record a phase that does not apply to this deployment as skipped."""
        self._enter(phase)
        await self._run(
            Phase.QUEUED,
            TrackingActivities.skip_phase,
            SkipInput(**self._input().model_dump(), phase=phase),
        )

    async def _host(self, phase: Phase, method: Any, entry: Metadata) -> Any:
        """Run a host-bound phase activity, recording `entry` in the metadata it enters with."""
        self._metadata.update(entry)
        self._enter(phase)
        return await self._run(phase, method, self._input())

    async def _run(self, phase: Phase, method: Any, arg: Any) -> Any:
        """Run a phase's activity. A cancel that arrived while it ran but that it finished
        anyway still cancels the deployment, unless the phase was the switch itself: once
        traffic has moved and the deployment is active, there is nothing left to cancel."""
        result = await workflow.execute_activity_method(method, arg, **self._options(phase))
        if phase is not Phase.ACTIVE and workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("cancelled by request")
        return result

    async def _end(self, status: Status, message: str, attempt: int, stack: str = "") -> None:
        """Put the previous release and route back if traffic may have been touched, record
        why the deployment ended, and fail (or cancel) the workflow."""
        assert self._deployment is not None
        ended_in = self._phase
        if ended_in in _TOUCHES_TRAFFIC or self._deployment.mode is Mode.ABANDON:
            try:
                await workflow.execute_activity_method(
                    HostActivities.restore_previous,
                    self._deployment,
                    **self._options(Phase.CREATING_SYMLINKS),
                )
            except ActivityError as err:
                self._metadata["compensationError"] = _reason(ended_in, err.cause)[0]
        self._metadata.update(
            {
                "error": message,
                "stack": stack,
                "failedAt": workflow.now().isoformat(),
                "failedPhase": ended_in.value,
                "attempt": attempt,
            }
        )
        self._status = status
        self._enter(Phase.FAILED)
        await workflow.execute_activity_method(
            TrackingActivities.mark_failed,
            FailInput(**self._input().model_dump(), status=status),
            **self._options(Phase.FAILED),
        )
        if status is Status.CANCELLED:
            raise asyncio.CancelledError(message)
        raise ApplicationError(f"{ended_in.value} failed: {message}", non_retryable=True)

    def _input(self) -> PhaseInput:
        assert self._deployment is not None
        return PhaseInput(deployment=self._deployment, metadata=dict(self._metadata))

    def _enter(self, phase: Phase) -> None:
        """Make the phase visible to queries, the UI's details and search attributes."""
        assert self._deployment is not None
        self._phase = phase
        if phase is not Phase.FAILED:
            self._status = STATUS[phase]
        workflow.upsert_search_attributes(
            [
                DEPLOYMENT_PHASE.value_set(phase.value),
                PROJECT_NAME.value_set(self._deployment.project),
            ]
        )
        workflow.set_current_details(
            f"**{phase.value}** ({PROGRESS[phase]}%) — project {self._deployment.project}"
        )

    def _options(self, phase: Phase) -> dict[str, Any]:
        assert self._deployment is not None
        options: dict[str, Any] = {
            "schedule_to_close_timeout": deadline(phase, self._deployment.phase_deadlines),
            "heartbeat_timeout": timedelta(seconds=self._deployment.heartbeat_timeout_seconds),
            "retry_policy": retry_policy(),
            "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "summary": f"{phase.value}: {self._deployment.project}",
        }
        if phase in HOST_PHASES:
            options["task_queue"] = self._deployment.host_queue
        return options

    @workflow.query
    def progress(self) -> DeploymentProgress:
        """Where the deployment is, answered from the workflow's own state."""
        assert self._deployment is not None
        return DeploymentProgress(
            deployment_id=self._deployment.deployment_id,
            project=self._deployment.project,
            phase=self._phase,
            progress=PROGRESS[self._phase],
            status=self._status,
            metadata=self._metadata,
        )


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
