"""ProjectWorkflow: one per project (workflow id `project-<name>`), the queue that keeps two
deployments of a project from interleaving. A deployment of a project with nothing running
starts its own workflow without it, holding the project's turn (`slipway.turns`); what
arrives meanwhile comes here by signal-with-start, and this workflow takes the turn before
it starts anything. The newest waiting deployment runs next and older waiting ones are
superseded. It ends when idle, and its turn with it, so no lock outlives its work, not even
across a crash."""

from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from activities.lifecycle import LifecycleActivities
    from activities.previews import PreviewActivities
    from activities.routing import RoutingActivities
    from activities.tracking import TrackingActivities
    from activities.turns import TurnActivities
    from slipway.metadata import PhaseMetadata
    from slipway.models import (
        DeploymentInput,
        FailInput,
        HostLifecycleInput,
        LifecycleAction,
        LifecycleRecord,
        LifecycleRequest,
        LifecycleResult,
        PhaseInput,
        PreviewRemoval,
        ProjectInput,
        ProjectState,
        RemovalInput,
        SupersedeInput,
        TurnAnswer,
        TurnRequest,
        busy_message,
    )
    from slipway.phases import Mode, Status
    from slipway.search_attributes import deployment_at_start
    from slipway.workflow_ids import deployment_workflow_id
    from workflows.deployment import DeploymentWorkflow
    from workflows.options import retry_policy

T = TypeVar("T")

IDLE = timedelta(seconds=30)
"""How long the workflow waits for another deployment before it ends and frees the lock."""

CONTINUE_AFTER = 100
"""Deployments run before continuing as new, to keep the history short."""

_DATABASE: dict[str, Any] = {
    "schedule_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": retry_policy(),
}

_ROUTES: dict[str, Any] = {
    "schedule_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": retry_policy(),
}
"""Rendering a project's route again on its server, retried while the server is away."""

REGISTERED_ONCE_PATCH = "registered-once"
"""Marks the histories in which the project's workflow alone records a deployment queued."""

ON_HOST_PATCH = "deployment-on-host"
"""Marks the histories in which a deployment's workflow runs on its server's queue, beside
its host-bound activities (before, on the shared queue: a round trip more per activity)."""

_TURN: dict[str, Any] = {
    "schedule_to_close_timeout": timedelta(days=1),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": retry_policy(),
}
"""Waiting for a deployment started directly to end: as long as a deployment may run."""

_LIFECYCLE: dict[str, Any] = {
    "schedule_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": retry_policy(),
}
"""A stop, start, restart or removal on a server: retried while the server is away."""

BUSY_WAIT = timedelta(seconds=60)
"""How long a delete that cancelled the project's deployments waits for them to end before
it is refused, unless its request says (`cancel_wait_seconds`)."""

SETTLE = timedelta(seconds=5)
"""How long any other lifecycle action waits for a deployment that is ending (one the caller
saw end, which this workflow learns of a moment later) before it is refused: one that still
runs or waits refuses it."""

ROUTES_PATCH = "routes-changed"
"""Marks the histories in which a deployment waits for a route refresh in progress."""

TURNS_PATCH = "project-turns"
"""Marks the histories in which the serializer takes the project's turn (`slipway.turns`)
before it starts anything: a deployment started directly may hold it."""

UNSTARTED_PATCH = "record-unstarted"
"""Marks the histories in which a deployment whose workflow could not start is recorded as
failed, and the serializer goes on, instead of failing with it."""


@workflow.defn(name="ProjectWorkflow")
class ProjectWorkflow:
    """Runs a project's deployments one at a time, newest first."""

    def __init__(self) -> None:
        self._project = ""
        self._pending: list[DeploymentInput] = []
        self._running: str | None = None
        self._started = False
        self._cancelled: set[str] = set()
        self._routes_stale = False
        self._refreshing = False
        """Host work between two deployments (a route refresh, a lifecycle action) is under
        way: the next deployment waits for it."""
        self._deleting = False
        self._registering: set[str] = set()
        self._has_turn = False
        self._taking_turn = False

    @workflow.signal
    async def enqueue(self, deployment: DeploymentInput) -> None:
        """A deployment to run after the one in progress; recorded as queued at once. The same
        deployment sent twice is queued once. One sent with only what to deploy (a service
        holding nothing but a Temporal client) is given an id and placed first; one its
        sender recorded already (`registered`, as the API does) is not recorded again."""
        if not deployment.deployment_id or not deployment.host_queue:
            placed = await self._placed(deployment)
            if placed is None:
                return
            deployment = placed
        if deployment.deployment_id == self._running or any(
            d.deployment_id == deployment.deployment_id for d in self._pending
        ):
            return
        once = workflow.patched(REGISTERED_ONCE_PATCH)
        self._pending.append(deployment)
        if once and deployment.registered:
            return
        if once:
            self._registering.add(deployment.deployment_id)
        try:
            recorded = await workflow.execute_activity_method(
                TrackingActivities.register,
                PhaseInput(
                    deployment=deployment, metadata=PhaseMetadata(release=deployment.release)
                ),
                **_DATABASE,
            )
        finally:
            self._registering.discard(deployment.deployment_id)
        if once and deployment in self._pending:
            self._confirm(deployment, recorded)

    def _confirm(self, deployment: DeploymentInput, recorded: Status) -> None:
        """A deployment still waiting once it is recorded: one that ran before (a retried
        request) is dropped, as it runs once (a resume comes with a new round, an orphan's
        resolution as abandon); any other will not be recorded again by its own workflow.
        One that started meanwhile records itself, and finds out there."""
        index = self._pending.index(deployment)
        if recorded is Status.QUEUED or deployment.round or deployment.mode is Mode.ABANDON:
            self._pending[index] = DeploymentInput(
                **deployment.model_dump(exclude={"registered"}), registered=True
            )
            return
        del self._pending[index]
        workflow.logger.info("deployment %s ran before: not again", deployment.deployment_id)

    async def _placed(self, deployment: DeploymentInput) -> DeploymentInput | None:
        """An id of its own (deterministic: from the workflow's random source), then its
        server, queue, timeouts and source from the database and a worker's settings. One
        that cannot be placed (no upload, no repository) is recorded failed, saying why."""
        if not deployment.deployment_id:
            deployment = DeploymentInput(
                **deployment.model_dump(exclude={"deployment_id"}),
                deployment_id=str(workflow.uuid4()),
            )
        try:
            return await workflow.execute_activity_method(
                TrackingActivities.place, deployment, **_DATABASE
            )
        except ActivityError as err:
            reason = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
            await workflow.execute_activity_method(
                TrackingActivities.mark_failed,
                FailInput(
                    deployment=deployment,
                    metadata=PhaseMetadata(error=reason, failed_at=workflow.now().isoformat()),
                    status=Status.FAILED,
                ),
                **_DATABASE,
            )
            return None

    @workflow.signal
    async def cancel(self, deployment_id: str) -> None:
        """Cancel a deployment of this project: the running one through its workflow's
        cancellation, a waiting one by dropping it (recorded as cancelled)."""
        if deployment_id == self._running:
            if self._started:
                await workflow.get_external_workflow_handle(
                    deployment_workflow_id(deployment_id)
                ).cancel()
            else:
                # Chosen to run next, its workflow not started yet: it never will be.
                self._cancelled.add(deployment_id)
            return
        for deployment in [d for d in self._pending if d.deployment_id == deployment_id]:
            self._pending.remove(deployment)
            await self._cancel_unstarted(deployment)

    async def _cancel_unstarted(self, deployment: DeploymentInput) -> None:
        """Record a deployment that was cancelled before it started."""
        await workflow.execute_activity_method(
            TrackingActivities.mark_failed,
            FailInput(
                deployment=deployment,
                metadata=PhaseMetadata(
                    error="cancelled by request before it started",
                    failed_at=workflow.now().isoformat(),
                ),
                status=Status.CANCELLED,
            ),
            **_DATABASE,
        )

    async def _unstarted(self, deployment: DeploymentInput) -> None:
        """Record a deployment whose workflow could not start (one with its id runs already:
        its id was claimed twice) as failed, saying why; the project's next deployments
        still run."""
        workflow.logger.warning("deployment %s could not start", deployment.deployment_id)
        await workflow.execute_activity_method(
            TrackingActivities.mark_failed,
            FailInput(
                deployment=deployment,
                metadata=PhaseMetadata(
                    error=(
                        f"its workflow {deployment_workflow_id(deployment.deployment_id)} "
                        "is already running (its id was given twice): deploy again"
                    ),
                    failed_at=workflow.now().isoformat(),
                ),
                status=Status.FAILED,
                unstarted=True,
            ),
            **_DATABASE,
        )

    @workflow.signal
    async def routes_changed(self, host_queue: str) -> None:
        """The project's custom domains or their certificates changed: its route is rendered
        again on its server (`host_queue`), between two deployments, so that it never races
        one writing the route. Signals that arrive while one waits share one refresh."""
        self._routes_stale = True
        await self._take_turn()
        while not self._project or self._running is not None or self._refreshing:
            await workflow.wait_condition(
                lambda: bool(self._project) and self._running is None and not self._refreshing
            )
        if not self._routes_stale:
            return
        self._routes_stale, self._refreshing = False, True
        try:
            await workflow.execute_activity_method(
                RoutingActivities.refresh_routes,
                self._project,
                task_queue=host_queue,
                summary=f"routes: {self._project}",
                **_ROUTES,
            )
        except ActivityError:
            workflow.logger.warning("the route of %s was not rendered again", self._project)
        finally:
            self._refreshing = False

    @workflow.signal
    async def remove_preview(self, removal: PreviewRemoval) -> None:
        """This project is a preview, and goes (its branch deleted, or expired): deployments
        waiting now are cancelled, the one running ends first, then its server removes what
        it used and its record says why. A deployment queued after this signal brings the
        preview back afterwards."""
        waiting, self._pending = self._pending, []
        for deployment in waiting:
            await self._cancel_unstarted(deployment)
        await self._take_turn()
        while not self._project or self._running is not None or self._refreshing:
            await workflow.wait_condition(
                lambda: bool(self._project) and self._running is None and not self._refreshing
            )
        self._refreshing = True
        try:
            await workflow.execute_activity_method(
                PreviewActivities.remove_preview,
                removal,
                task_queue=removal.host_queue,
                summary=f"remove preview {removal.site}",
                **_ROUTES,
            )
            await workflow.execute_activity_method(
                PreviewActivities.record_removed, removal, **_DATABASE
            )
        except ActivityError:
            workflow.logger.warning("the preview %s was not removed", removal.site)
        finally:
            self._refreshing = False

    @workflow.update
    async def lifecycle(self, request: LifecycleRequest) -> LifecycleResult:
        """Stop, start, restart or delete the project, between two deployments: refused if one
        still runs or waits (a delete with `cancel` cancels them first, and waits for them). A
        delete removes the project from every server it has files on, then its rows; resumed
        after a crash, it finishes what it began."""
        deleting = request.action is LifecycleAction.DELETE
        self._deleting = self._deleting or deleting
        try:
            within = SETTLE
            if deleting and request.cancel:
                wait = request.cancel_wait_seconds
                within = BUSY_WAIT if wait is None else timedelta(seconds=wait)
            if deleting and request.cancel:
                await self._cancel_all()
            holder = await self._turn_within(request.project, within, deleting and request.cancel)
            if holder is not None or not await self._idle(within):
                busy = [
                    holder or "",
                    self._running or "",
                    *(d.deployment_id for d in self._pending),
                ]
                raise ApplicationError(
                    busy_message(request.project, [d for d in busy if d], request.action),
                    type="BadInput",
                    non_retryable=True,
                )
            self._refreshing = True
            try:
                if deleting:
                    return await self._delete(request)
                return await self._change(request)
            finally:
                self._refreshing = False
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(err)
            raise ApplicationError(message, type="BadInput", non_retryable=True) from None
        finally:
            if deleting:
                self._deleting = False

    async def _take_turn(self) -> None:
        """Hold the project's turn before starting anything: wait, as long as it takes, for
        a deployment started directly to end. Held once, it stays the serializer's while
        it runs (its next run takes it again at once)."""
        if not workflow.patched(TURNS_PATCH):
            return
        while not self._has_turn:
            if self._taking_turn:
                await workflow.wait_condition(lambda: not self._taking_turn)
                continue
            await workflow.wait_condition(lambda: bool(self._project))
            self._taking_turn = True
            try:
                answer: TurnAnswer = await workflow.execute_activity_method(
                    TurnActivities.take_turn, TurnRequest(project=self._project), **_TURN
                )
                self._has_turn = answer.holder is None
            finally:
                self._taking_turn = False

    async def _turn_within(self, project: str, within: timedelta, cancel: bool) -> str | None:
        """The project's turn for a lifecycle action, if a deployment started directly ends
        within `within` (with `cancel`, cancelled first); None once held, else that
        deployment's id."""
        if self._has_turn or not workflow.patched(TURNS_PATCH):
            return None
        answer: TurnAnswer = await workflow.execute_activity_method(
            TurnActivities.take_turn,
            TurnRequest(project=project, within_seconds=within.total_seconds(), cancel=cancel),
            **_TURN,
        )
        self._has_turn = self._has_turn or answer.holder is None
        return answer.holder

    async def _idle(self, within: timedelta) -> bool:
        """Wait until no deployment runs or waits and no host work is under way; False if
        that has not come within `within`."""
        try:
            await workflow.wait_condition(
                lambda: (
                    bool(self._project)
                    and self._running is None
                    and not self._pending
                    and not self._refreshing
                ),
                timeout=within,
            )
        except TimeoutError:
            return False
        return True

    async def _cancel_all(self) -> None:
        """Drop the waiting deployments (recorded cancelled) and cancel the running one."""
        waiting, self._pending = self._pending, []
        for deployment in waiting:
            await self._cancel_unstarted(deployment)
        if self._running is not None:
            await self.cancel(self._running)

    async def _change(self, request: LifecycleRequest) -> LifecycleResult:
        """A stop, start or restart on the project's server, then recorded in its history."""
        operation = str(workflow.uuid4())
        message = await _on_server(
            request,
            request.host_queues[0],
            workflow.execute_activity_method(
                LifecycleActivities.change_project,
                HostLifecycleInput(
                    project=request.project,
                    action=request.action,
                    operation_id=operation,
                    health_timeout_seconds=request.health_timeout_seconds,
                ),
                task_queue=request.host_queues[0],
                summary=f"{request.action.value}: {request.project}",
                schedule_to_start_timeout=_pickup(request),
                **_LIFECYCLE,
            ),
        )
        stopped = request.action is LifecycleAction.STOP
        await workflow.execute_activity_method(
            LifecycleActivities.record_lifecycle,
            LifecycleRecord(
                project=request.project,
                action=request.action,
                operation_id=operation,
                message=message,
                stopped=stopped,
            ),
            **_DATABASE,
        )
        return LifecycleResult(
            project=request.project,
            action=request.action,
            state="stopped" if stopped else "running",
            message=message,
        )

    async def _delete(self, request: LifecycleRequest) -> LifecycleResult:
        """What the project has, removed from each of its servers, then its rows."""
        inventory = await workflow.execute_activity_method(
            LifecycleActivities.project_inventory, request.project, **_DATABASE
        )
        removed = 0
        for queue in request.host_queues:
            report = await _on_server(
                request,
                queue,
                workflow.execute_activity_method(
                    LifecycleActivities.remove_project_files,
                    RemovalInput(project=request.project, inventory=inventory),
                    task_queue=queue,
                    summary=f"delete: {request.project}",
                    schedule_to_start_timeout=_pickup(request),
                    **_LIFECYCLE,
                ),
            )
            removed += len(report.containers) + len(report.images) + len(report.paths)
        await workflow.execute_activity_method(
            LifecycleActivities.remove_project_rows, request.project, **_DATABASE
        )
        return LifecycleResult(
            project=request.project,
            action=request.action,
            state="deleted",
            message=(
                f"Deleted: {len(inventory.deployment_ids)} deployments and {removed} "
                f"containers, images and paths on {len(request.host_queues)} server(s)"
            ),
        )

    @workflow.query
    def state(self) -> ProjectState:
        """The deployment running now and those waiting, oldest first."""
        return ProjectState(
            project=self._project,
            running=self._running,
            queued=[d.deployment_id for d in self._pending],
        )

    @workflow.run
    async def run(self, inp: ProjectInput) -> None:
        self._project = inp.project
        self._pending = list(inp.pending) + self._pending
        for _ in range(CONTINUE_AFTER):
            try:
                await workflow.wait_condition(lambda: self._ready() is not None, timeout=IDLE)
            except TimeoutError:
                break
            await self._take_turn()
            if workflow.patched(ROUTES_PATCH):
                while self._refreshing:
                    await workflow.wait_condition(lambda: not self._refreshing)
            chosen = self._ready()
            if chosen is None:
                continue  # cancelled while the turn was awaited
            newest = self._pending[chosen]
            # It runs from now on: a cancel or a query while the older ones are superseded
            # finds it here. Those that arrived after it stay for the next turn.
            self._running, self._started = newest.deployment_id, False
            older, self._pending = self._pending[:chosen], self._pending[chosen + 1 :]
            for deployment in older:
                await workflow.execute_activity_method(
                    TrackingActivities.supersede,
                    SupersedeInput(deployment=deployment, by=newest.deployment_id),
                    **_DATABASE,
                )
            await self._deploy(newest)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._pending:
            workflow.continue_as_new(ProjectInput(project=inp.project, pending=self._pending))

    def _ready(self) -> int | None:
        """The index of the newest waiting deployment that is recorded already (one whose
        record is being written waits for it, so that it is written once), if any."""
        for index in range(len(self._pending) - 1, -1, -1):
            if self._pending[index].deployment_id not in self._registering:
                return index
        return None

    async def _deploy(self, deployment: DeploymentInput) -> None:
        """Run one deployment to its end, whatever the end; it records its own outcome."""
        try:
            if deployment.deployment_id in self._cancelled:
                await self._cancel_unstarted(deployment)
                return
            on_host = workflow.patched(ON_HOST_PATCH)
            try:
                child = await workflow.start_child_workflow(
                    DeploymentWorkflow.run,
                    deployment,
                    task_queue=deployment.host_queue if on_host else None,
                    id=deployment_workflow_id(deployment.deployment_id),
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    search_attributes=deployment_at_start(deployment.project),
                    static_summary=f"Deploy {deployment.project} ({deployment.deployment_id[:8]})",
                )
            except WorkflowAlreadyStartedError:
                if not workflow.patched(UNSTARTED_PATCH):
                    raise
                await self._unstarted(deployment)
                return
            self._started = True
            if deployment.deployment_id in self._cancelled:
                # Cancelled while its workflow was starting.
                await workflow.get_external_workflow_handle(child.id).cancel()
            await child
        except (ChildWorkflowError, ActivityError):
            workflow.logger.info("deployment %s did not go active", deployment.deployment_id)
        finally:
            self._running, self._started = None, False
            self._cancelled.discard(deployment.deployment_id)


def _pickup(request: LifecycleRequest) -> timedelta | None:
    """How long a server's worker has to take up its part of a lifecycle action."""
    if request.pickup_seconds is None:
        return None
    return timedelta(seconds=request.pickup_seconds)


async def _on_server(request: LifecycleRequest, queue: str, work: Awaitable[T]) -> T:
    """A lifecycle action's part on one server; refused, saying which, if no worker of that
    server took it up in time (the server is down: the action waits for no one)."""
    try:
        return await work
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ActivityTimeoutError) and cause.type is TimeoutType.SCHEDULE_TO_START:
            raise ApplicationError(
                f"no worker of the server on queue {queue} took up the {request.action.value} "
                f"of {request.project} within {request.pickup_seconds:g} s: start that "
                "server's worker, then try again",
                type="BadInput",
                non_retryable=True,
            ) from None
        raise
