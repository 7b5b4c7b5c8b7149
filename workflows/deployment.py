"""DeploymentWorkflow: one deployment through its phases, with compensation on failure."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
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
        HealthInput,
        Metadata,
        PhaseInput,
    )
    from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name
    from slipway.phases import PROGRESS, STATUS, WORK_PHASES, Phase
    from slipway.search_attributes import DEPLOYMENT_PHASE, PROJECT_NAME
    from workflows.options import PHASE_DEADLINES, RETRY

_SWITCH_INDEX = WORK_PHASES.index(Phase.CREATING_SYMLINKS)


@workflow.defn(name="DeploymentWorkflow")
class DeploymentWorkflow:
    """Sequences the phase activities of one deployment. Its history is what recovery runs on:
    a worker that dies mid-phase costs a retry of that phase's idempotent activity."""

    def __init__(self) -> None:
        self._deployment: DeploymentInput | None = None
        self._phase = Phase.QUEUED
        self._metadata: Metadata = {}

    @workflow.run
    async def run(self, deployment: DeploymentInput) -> DeploymentProgress:
        try:
            validate_project_name(deployment.project)
            validate_deployment_id(deployment.deployment_id)
        except InvalidNameError as err:
            raise ApplicationError(str(err), type="BadInput", non_retryable=True) from None
        self._deployment = deployment
        self._enter(Phase.QUEUED)
        await workflow.execute_activity_method(
            TrackingActivities.register, deployment, **self._options(Phase.QUEUED)
        )
        try:
            await self._work(deployment)
        except ActivityError as err:
            await self._fail(deployment, err)
        self._metadata["completedAt"] = workflow.now().isoformat()
        self._enter(Phase.ACTIVE)
        await workflow.execute_activity_method(
            TrackingActivities.mark_active, self._input(), **self._options(Phase.ACTIVE)
        )
        return self.progress()

    async def _work(self, deployment: DeploymentInput) -> None:
        entry: Metadata = {"uploadId": deployment.upload_id}
        if deployment.source_commit:
            entry["sourceCommit"] = deployment.source_commit
        pulled = await self._host(Phase.PULLING_SOURCE, HostActivities.pull_source, entry)
        built = await self._host(
            Phase.BUILDING,
            HostActivities.build,
            {"contentDigest": pulled.digest, "sourceFiles": pulled.files},
        )
        self._metadata.update(
            {"detectedType": built.detected_type, "deploymentType": built.deployment_type}
        )
        self._enter(Phase.COPYING_FILES)
        copied = await workflow.execute_activity_method(
            HostActivities.copy_files,
            CopyInput(deployment=deployment, metadata=self._metadata, site_root=built.site_root),
            **self._options(Phase.COPYING_FILES),
        )
        switched = await self._host(
            Phase.CREATING_SYMLINKS,
            HostActivities.switch_release,
            {"filesCopied": copied.files_copied, "totalFiles": copied.total_files},
        )
        routed = await self._host(
            Phase.UPDATING_ROUTES,
            HostActivities.update_routes,
            {"previousRelease": switched.previous_release},
        )
        self._metadata["routeVersion"] = routed.version
        self._enter(Phase.HEALTH_CHECK)
        checked = await workflow.execute_activity_method(
            HostActivities.health_check,
            HealthInput(**self._input().model_dump(), route_version=routed.version),
            **self._options(Phase.HEALTH_CHECK),
        )
        self._metadata["url"] = checked.url

    async def _host(self, phase: Phase, method: Any, entry: Metadata) -> Any:
        """Run a host-bound phase activity, recording `entry` in the metadata it enters with."""
        self._metadata.update(entry)
        self._enter(phase)
        return await workflow.execute_activity_method(method, self._input(), **self._options(phase))

    async def _fail(self, deployment: DeploymentInput, err: ActivityError) -> None:
        """Put the previous release and route back, record why, and fail the workflow."""
        failed_phase = self._phase
        message, attempt = _reason(failed_phase, err.cause)
        if WORK_PHASES.index(failed_phase) >= _SWITCH_INDEX:
            await workflow.execute_activity_method(
                HostActivities.restore_previous, deployment, **self._options(failed_phase)
            )
        self._metadata.update(
            {
                "error": message,
                "stack": _origin_stack(err),
                "failedAt": workflow.now().isoformat(),
                "failedPhase": failed_phase.value,
                "attempt": attempt,
            }
        )
        self._enter(Phase.FAILED)
        await workflow.execute_activity_method(
            TrackingActivities.mark_failed, self._input(), **self._options(Phase.FAILED)
        )
        raise ApplicationError(f"{failed_phase.value} failed: {message}", non_retryable=True)

    def _input(self) -> PhaseInput:
        assert self._deployment is not None
        return PhaseInput(deployment=self._deployment, metadata=dict(self._metadata))

    def _enter(self, phase: Phase) -> None:
        """Make the phase visible to queries, the UI's details and search attributes."""
        assert self._deployment is not None
        self._phase = phase
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
            "schedule_to_close_timeout": PHASE_DEADLINES[phase],
            "heartbeat_timeout": timedelta(seconds=self._deployment.heartbeat_timeout_seconds),
            "retry_policy": RETRY,
            "summary": f"{phase.value}: {self._deployment.project}",
        }
        if phase in WORK_PHASES:
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
            status=STATUS[self._phase],
            metadata=self._metadata,
        )


def _reason(phase: Phase, cause: BaseException | None) -> tuple[str, int]:
    """A failed activity's reason in words a person can act on, and the attempt it failed on."""
    if isinstance(cause, TimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
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
