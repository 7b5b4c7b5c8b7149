"""The Python API: start, cancel, resume and roll back deployments, follow them, read them.

A service that only has a Temporal client signals-with-start `ProjectWorkflow` (workflow id
`project-<name>`, signal `enqueue`) with a `DeploymentInput`; these functions add the upload
store and the database view on top.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from slipway import env_versions, previews, queries, records, submission, turns
from slipway.database import engine_for
from slipway.environment import EnvError, check
from slipway.metadata import PhaseMetadata
from slipway.models import (
    DeploymentInput,
    DeploymentView,
    GitSource,
    LogEntry,
    PreviewRemoval,
    PreviewView,
    ReconcileReport,
)
from slipway.names import preview_site, validate_deployment_id, validate_project_name
from slipway.phases import TERMINAL, DeploymentType, Mode, Phase, Status
from slipway.project_sources import ProjectError, checked, describe, project_git
from slipway.records import Registered
from slipway.schedules import reconcile_input
from slipway.secrets import load_key, seal, unseal
from slipway.settings import Settings, host_task_queue
from slipway.temporal import has_pollers, workflow_status
from slipway.workflow_ids import (
    deployment_workflow_id,
    project_workflow_id,
    reconcile_schedule_id,
)
from starter.uploads import store_upload


class DeploymentError(ValueError):
    """A request that cannot be carried out as asked; the message says why."""


class NotRecordedError(DeploymentError, LookupError):
    """The deployment named is not recorded (or is not the project's)."""


class PreviewNotFoundError(NotRecordedError):
    """The project has no preview of that name (or it was removed)."""


class KeyClashError(ValueError):
    """A new deployment's id (derived from an Idempotency-Key) is another project's."""

    def __init__(self, message: str, deployment_id: str) -> None:
        super().__init__(message)
        self.deployment_id = deployment_id


async def submit(client: Client, settings: Settings, deployment: DeploymentInput) -> str:
    """Queue a deployment with its project's serializer; returns its id."""
    return await submission.submit(client, settings.task_queue, deployment)


async def _input(
    settings: Settings, engine: sa.Engine, project: str, **fields: Any
) -> DeploymentInput:
    """A deployment of `project` on the server it is pinned to (on a first deployment: this
    one's; for a preview: the server of the project it previews), with this side's
    timeouts. A coroutine that reads the pin in a thread, so that no caller on an event loop
    can stall the loop on that round trip."""
    owner = fields.get("preview_of") or project
    pinned = await asyncio.to_thread(queries.project_server, engine, owner)
    server = pinned or settings.server
    return DeploymentInput(
        project=project,
        server=server,
        host_queue=host_task_queue(settings.task_queue, server),
        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
        phase_deadlines=settings.phase_deadlines,
        bake_seconds=settings.bake_seconds,
        bake_probe_seconds=settings.bake_probe_seconds,
        restart_limit=settings.restart_limit,
        **fields,
    )


async def start_deployment(
    client: Client,
    settings: Settings,
    path: Path | None,
    project: str,
    *,
    git: GitSource | None = None,
    source_commit: str | None = None,
    deployment_id: str | None = None,
    engine: sa.Engine | None = None,
    env: Mapping[str, str] | None = None,
    preview: str | None = None,
) -> str:
    """Store the upload (or take the git source: a repository and ref; with neither, the
    project's own repository and branch) and queue its deployment; return the deployment id.
    With a deployment id that is already recorded, nothing new starts.
    It runs with the project's current environment version, and `env` over it for this
    deployment only; those values are sealed here, before anything records them. With
    `preview`, it deploys the project's preview of that name (see `_site`), which runs with
    the project's environment."""
    validate_project_name(project)
    deployment_id = validate_deployment_id(deployment_id or str(uuid.uuid4()))
    engine = engine or engine_for(settings.sqlalchemy_url)
    if await _recorded(
        engine, deployment_id, preview_site(preview, project) if preview else project
    ):
        return deployment_id
    site, preview_of = await _site(engine, project, preview)
    version, overrides = await _overrides(settings, engine, project, env or {})
    upload_id = ""
    if path is not None:
        limits = settings.unpack_limits
        upload_id = await asyncio.to_thread(store_upload, settings.layout, path, limits)
        source = f"upload {path.name}"
    else:
        if git is None:
            git = await asyncio.to_thread(project_git, engine, project)
        source = describe(checked(git))
    deployment = await _input(
        settings,
        engine,
        site,
        deployment_id=deployment_id,
        upload_id=upload_id,
        git=git if path is None else None,
        source_commit=source_commit,
        source=source,
        env_version=version,
        preview_of=preview_of,
    )
    return await _queued(client, settings, engine, deployment, overrides)


async def _overrides(
    settings: Settings, engine: sa.Engine, project: str, env: Mapping[str, str]
) -> tuple[int, dict[str, str]]:
    """The project's current environment version, and `env` (this deployment's overrides)
    sealed, once its names are checked and the two together are within the limits."""

    def work() -> tuple[int, dict[str, str]]:
        version, sealed = env_versions.current(engine, project)
        key = load_key(settings)
        if env:
            try:
                check({**unseal(sealed, key), **env}, settings.env_limits)
            except EnvError as err:
                raise EnvError(f"env: {err}") from None
        return version, seal(env, key)

    return await asyncio.to_thread(work)


async def _site(engine: sa.Engine, project: str, preview: str | None) -> tuple[str, str]:
    """Where a deployment goes: the project itself, or its preview `<preview>--<project>`
    (a name of its own: its route, releases and containers never touch the project's), and
    the project it previews; refused if the name would make one project another's
    (`previews.check_site`)."""
    site, parent = (preview_site(preview, project), project) if preview else (project, "")
    try:
        await asyncio.to_thread(previews.check_site, engine, site, parent)
    except previews.SiteClashError as err:
        raise DeploymentError(str(err)) from None
    return site, parent


async def _recorded(engine: sa.Engine, deployment_id: str, project: str) -> bool:
    """True if the deployment is recorded already (a request sent again): nothing new
    starts. One recorded for another project (one Idempotency-Key for two projects, the
    second arriving while the first was stored) is refused with `KeyClashError`."""
    found = await asyncio.to_thread(status, engine, deployment_id)
    if found is None:
        return False
    if found.project != project:
        raise KeyClashError(f"deployment {found.id} is already one of {found.project}'s", found.id)
    return True


async def _queued(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    deployment: DeploymentInput,
    overrides: Mapping[str, str],
) -> str:
    """Record the new deployment as queued, then start it: its own workflow at once if its
    project has nothing running (it takes the project's turn in the same transaction, see
    `slipway.turns`), else through its project's serializer, saying it is recorded (the
    serializer then writes no record of its own): a caller that reads it right after
    finds it. Two requests that name one deployment id
    (an Idempotency-Key sent twice at once) meet here: the row is claimed in one statement,
    and the one that did not claim it starts nothing (`KeyClashError` if it was for another
    project)."""
    git = deployment.git
    metadata = PhaseMetadata(
        release=deployment.release,
        env_version=deployment.env_version,
        upload_id=deployment.upload_id or None,
        source_commit=deployment.source_commit,
        source_url=git.url if git else None,
        source_ref=git.ref if git else None,
    )
    host = settings.project_host(deployment.project)
    opening = await turns.opening(client, engine, deployment.project)
    registered = await asyncio.to_thread(
        records.register, engine, deployment, host, metadata, overrides, opening
    )
    if registered is Registered.EXISTED:
        found = await asyncio.to_thread(status, engine, deployment.deployment_id)
        if found is not None and found.project != deployment.project:
            raise KeyClashError(
                f"deployment {found.id} is already one of {found.project}'s", found.id
            )
        return deployment.deployment_id
    deployment = deployment.model_copy(update={"registered": True})
    if registered is Registered.IN_TURN:
        try:
            return await submission.start_directly(client, deployment)
        except (RPCError, WorkflowAlreadyStartedError):
            # Its serializer takes it from here, and says why if it cannot start either.
            await asyncio.to_thread(
                turns.give_back, engine, deployment.project, deployment.deployment_id
            )
    return await submit(client, settings, deployment)


async def deploy_stored(
    client: Client,
    settings: Settings,
    upload_id: str,
    project: str,
    *,
    source: str,
    source_commit: str | None = None,
    deployment_id: str | None = None,
    engine: sa.Engine | None = None,
    env: Mapping[str, str] | None = None,
    preview: str | None = None,
) -> str:
    """Queue the deployment of an upload already in the store (a content manifest whose
    blobs have arrived); return the deployment id. With a deployment id that is already
    recorded, nothing new starts; `env` overrides the project's environment for this
    deployment only, sealed here, as `start_deployment` seals it; with `preview`, it
    deploys the project's preview of that name, as `start_deployment` does."""
    validate_project_name(project)
    deployment_id = validate_deployment_id(deployment_id or str(uuid.uuid4()))
    engine = engine or engine_for(settings.sqlalchemy_url)
    if await _recorded(
        engine, deployment_id, preview_site(preview, project) if preview else project
    ):
        return deployment_id
    site, preview_of = await _site(engine, project, preview)
    version, overrides = await _overrides(settings, engine, project, env or {})
    deployment = await _input(
        settings,
        engine,
        site,
        deployment_id=deployment_id,
        upload_id=upload_id,
        source_commit=source_commit,
        source=source,
        env_version=version,
        preview_of=preview_of,
    )
    return await _queued(client, settings, engine, deployment, overrides)


async def cancel(client: Client, engine: sa.Engine, deployment_id: str) -> str:
    """Cancel a deployment: a running one through Temporal cancellation (its compensation
    puts the previous release back), a queued one by taking it off its project's queue, and
    one that nothing holds (no workflow of its own, its project's queue not running: its
    start was never made) by recording it cancelled. One whose workflow ended without
    recording its end is the reconciler's to record: a conflict."""
    view = await asyncio.to_thread(status, engine, deployment_id)
    if view is None or view.status in TERMINAL:
        if view is None:
            raise NotRecordedError(f"deployment {deployment_id} is not recorded: nothing to cancel")
        raise DeploymentError(
            f"deployment {deployment_id} is {view.status.value}: nothing to cancel"
        )
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    own = await workflow_status(client, handle.id)
    if own is None and await _signal_cancel(client, view.project, deployment_id):
        return "cancel requested from its project's queue"
    if own is None:
        own = await workflow_status(client, handle.id)
    if own is None:
        reason = "cancelled by request before it started (nothing was to start it)"
        await asyncio.to_thread(_record_cancelled, engine, view, reason)
        return "cancelled: it had not started, and nothing was to start it"
    if own is not WorkflowExecutionStatus.RUNNING:
        raise DeploymentError(
            f"deployment {deployment_id}'s workflow has ended ({own.name.lower()}) without "
            "recording its end: nothing to cancel (the reconciler records how it ended)"
        )
    await handle.cancel()
    if not await _unserved_before_it_ran(client, handle):
        return "cancelling"
    # Nothing of it ran, and nothing would hear the cancel until its server's worker
    # is back: it ends now, recorded as cancelled, with nothing to put back.
    await handle.terminate("cancelled before it started; no worker serves its server")
    reason = "cancelled by request before it started (no worker serves its server)"
    await asyncio.to_thread(_record_cancelled, engine, view, reason)
    return "cancelled: it had not started, and no worker serves its server"


async def _signal_cancel(client: Client, project: str, deployment_id: str) -> bool:
    """Ask the project's queue to drop the deployment; False if the queue is not running
    (then it holds nothing)."""
    # The workflow's module loads every activity's (Docker's client among them): imported
    # where it is signalled, so the CLI's reading commands start without it.
    from workflows.project import ProjectWorkflow

    try:
        await client.get_workflow_handle(project_workflow_id(project)).signal(
            ProjectWorkflow.cancel, deployment_id
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


async def _unserved_before_it_ran(client: Client, handle: WorkflowHandle[Any, Any]) -> bool:
    """True if the deployment's workflow has not run a single step and nobody polls the
    queue it waits on (its server's): a cancel would wait for that server to come back."""
    described = await handle.describe()
    if await has_pollers(client, described.task_queue):
        return False
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return False
    return True


def _record_cancelled(engine: sa.Engine, view: DeploymentView, reason: str) -> None:
    """The cancelled end of a deployment that never started, as its workflow would record
    it. It waits on the database: async code calls it in a thread."""
    details = view.details.merged(
        PhaseMetadata(
            error=reason, failed_at=datetime.now(UTC).isoformat(), failed_phase=view.phase
        )
    )
    records.record_transition(
        engine, view.id, Phase.FAILED, details, status=Status.CANCELLED, level="warning"
    )


async def resume(client: Client, settings: Settings, engine: sa.Engine, deployment_id: str) -> str:
    """Continue a failed, cancelled or orphaned deployment from its first unfinished phase:
    finished phases are verified and skipped, not redone."""
    view = await asyncio.to_thread(status, engine, deployment_id)
    if view is None:
        raise NotRecordedError(f"no deployment {deployment_id} is recorded")
    if view.status in (Status.ACTIVE, Status.SUPERSEDED):
        raise DeploymentError(
            f"deployment {deployment_id} is {view.status.value}: nothing to resume"
        )
    running = await workflow_status(client, deployment_workflow_id(deployment_id))
    if running is WorkflowExecutionStatus.RUNNING:
        raise DeploymentError(f"deployment {deployment_id} is still running")
    template = await _input(settings, engine, view.project, deployment_id=deployment_id)
    lineage = await asyncio.to_thread(previews.lineage, engine, view)
    deployment = submission.continuation(
        view, template, Mode.DEPLOY, f"resumed after {view.status.value}", next_round=True
    ).model_copy(update=lineage)
    return await submit(client, settings, deployment)


async def redeploy_deployment(
    client: Client, settings: Settings, engine: sa.Engine, deployment_id: str
) -> str:
    """Deploy what a deployment deployed (its stored upload, with its own environment
    overrides) again, as a new deployment of its project running with the project's current
    environment version; the new one's id."""
    view = await asyncio.to_thread(status, engine, deployment_id)
    if view is None:
        raise NotRecordedError(f"no deployment {deployment_id} is recorded")
    upload_id = view.details.upload_id
    if not upload_id or view.details.mode is Mode.ROLLBACK:
        raise DeploymentError(
            f"deployment {deployment_id} has no upload of its own to deploy again "
            "(a rollback, or it never got its source): roll back to it, or deploy anew"
        )
    overrides = await asyncio.to_thread(queries.sealed_env, engine, deployment_id)
    version, _ = await asyncio.to_thread(env_versions.current, engine, view.project)
    deployment = await _input(
        settings,
        engine,
        view.project,
        deployment_id=str(uuid.uuid4()),
        upload_id=upload_id,
        source_commit=view.details.source_commit,
        source=view.source,
        env_version=version,
    )
    return await _queued(client, settings, engine, deployment, overrides)


def _serving(history: list[DeploymentView]) -> list[DeploymentView]:
    """The project's active deployments, the one that switched last first."""
    return sorted(
        (v for v in history if v.status is Status.ACTIVE),
        key=lambda v: v.phase_updated_at,
        reverse=True,
    )


def rollback_target(engine: sa.Engine, project: str, to: str | None) -> DeploymentView:
    """The deployment whose release to roll back to, and whose environment version to run
    with: deployment `to`, or the newest active one of a release before the one serving.
    It waits on the database: async code calls it in a thread."""
    history = queries.project_history(engine, project)
    if to is not None:
        to = validate_deployment_id(to)
        for view in history:
            if view.id == to:
                return view
        raise NotRecordedError(f"deployment {to} is not a deployment of {project}")
    active = _serving(history)
    if not active:
        raise DeploymentError(f"{project} has no active deployment to roll back from")
    serving = active[0].release
    for view in active[1:]:
        if view.release != serving:
            return view
    raise DeploymentError(f"{project} has no earlier release to roll back to")


async def _switch_to(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    view: DeploymentView,
    env_version: int,
    reason: str,
    source: str,
    carried: dict[str, str] | None = None,
) -> str:
    """Switch the project to `view`'s release, kept on its server, without rebuilding, as
    a deployment of its own running with `env_version` (and `carried`, sealed values it
    takes along), recorded before this returns (a page opened on its id finds it)."""
    target = view.release
    built = await asyncio.to_thread(queries.get_deployment, engine, target)
    deployment = await _input(
        settings,
        engine,
        project,
        deployment_id=str(uuid.uuid4()),
        mode=Mode.ROLLBACK,
        release_id=target,
        reason=reason,
        source=source,
        deployment_type=(built.details.deployment_type or DeploymentType.STATIC) if built else None,
        env_version=env_version,
        env=carried or {},
    )
    return await _queued(client, settings, engine, deployment, {})


async def rollback(
    client: Client, settings: Settings, engine: sa.Engine, project: str, to: str | None = None
) -> str:
    """Switch the project to a kept earlier release, without rebuilding, as a deployment of
    its own; it fails clearly when that release was cleaned up. It runs with the environment
    version that release's deployment ran with; the project's current version stays as it
    is, for the deployments after it."""
    validate_project_name(project)
    view = await asyncio.to_thread(rollback_target, engine, project, to)
    version = view.details.env_version or 0
    reason = f"rollback to release {view.release}"
    source = f"rollback to {view.release}"
    # A deployment recorded before environment versions kept its whole environment sealed
    # in its row: that goes along, as it always did.
    legacy = None
    if view.details.env_version is None:
        legacy = await asyncio.to_thread(queries.sealed_env, engine, view.id)
    return await _switch_to(
        client, settings, engine, project, view, version, reason, source, legacy
    )


async def redeploy(client: Client, settings: Settings, engine: sa.Engine, project: str) -> str:
    """Run the project again with its current environment version: the release that serves
    starts anew without rebuilding (a switch to its own release); with nothing deployed
    yet, a deployment of the project's repository."""
    validate_project_name(project)
    history = await asyncio.to_thread(queries.project_history, engine, project)
    active = _serving(history)
    version, _ = await asyncio.to_thread(env_versions.current, engine, project)
    if active:
        release = active[0].release
        reason = f"redeploy of release {release} with environment version {version}"
        source = f"redeploy of {release} (env v{version})"
        return await _switch_to(
            client, settings, engine, project, active[0], version, reason, source
        )
    try:
        return await start_deployment(client, settings, None, project, engine=engine)
    except ProjectError as err:
        raise DeploymentError(
            f"{project} has nothing deployed to run again, and {err}; its next deployment "
            f"runs with environment version {version}"
        ) from None


async def promote(
    client: Client, settings: Settings, engine: sa.Engine, project: str, preview: str
) -> str:
    """Switch the project to the release its preview serves, without rebuilding, as a
    deployment of its own (like a rollback): the release is adopted into the project's own
    releases at copying_files, then proven and switched to as any release is. It runs with
    the project's current environment version, as the preview did."""
    site = preview_site(preview, validate_project_name(project))
    if await asyncio.to_thread(previews.preview_parent, engine, site, live=True) != project:
        raise PreviewNotFoundError(f"{project} has no preview {preview}")
    serving = await asyncio.to_thread(queries.recent, engine, site, Status.ACTIVE, 1)
    if not serving:
        raise DeploymentError(f"the preview {preview} of {project} has no active deployment")
    built = serving[0]
    await _site(engine, project, None)
    version, _ = await asyncio.to_thread(env_versions.current, engine, project)
    deployment = await _input(
        settings,
        engine,
        project,
        deployment_id=str(uuid.uuid4()),
        mode=Mode.ROLLBACK,
        release_id=built.release,
        release_from=site,
        reason=f"promote preview {preview} (release {built.release})",
        source=f"promote preview {preview}",
        deployment_type=built.details.deployment_type or DeploymentType.STATIC,
        env_version=version,
    )
    return await submit(client, settings, deployment)


async def remove_preview(
    client: Client, settings: Settings, engine: sa.Engine, project: str, preview: str, reason: str
) -> bool:
    """Have the preview removed from its server with everything it used, between two of its
    deployments; False if there is no such preview (or it was removed already)."""
    site = preview_site(preview, validate_project_name(project))
    if await asyncio.to_thread(previews.preview_parent, engine, site, live=True) != project:
        return False
    server = await asyncio.to_thread(queries.project_server, engine, site) or settings.server
    removal = PreviewRemoval(
        site=site,
        project=project,
        name=preview,
        reason=reason,
        host_queue=host_task_queue(settings.task_queue, server),
    )
    await submission.remove_preview(client, settings.task_queue, removal)
    return True


def preview_url(settings: Settings, site: str) -> str:
    """Where a preview answers over HTTP."""
    port = "" if settings.http_port == 80 else f":{settings.http_port}"
    return f"http://{settings.project_host(site)}{port}"


def list_previews(settings: Settings, engine: sa.Engine, project: str | None) -> list[PreviewView]:
    """The previews not removed, each with what serves it and when it expires. It waits on
    the database: async code calls it in a thread."""
    ttl = timedelta(seconds=settings.preview_ttl_seconds)
    return previews.list_previews(engine, project, lambda site: preview_url(settings, site), ttl)


async def workflow_closed(client: Client, deployment_id: str) -> bool:
    """True if the deployment's workflow has ended, however it ended."""
    try:
        described = await client.get_workflow_handle(
            deployment_workflow_id(deployment_id)
        ).describe()
    except RPCError:
        return False
    return described.status not in (None, WorkflowExecutionStatus.RUNNING)


async def follow(
    client: Client,
    engine: sa.Engine,
    deployment_id: str,
    interval: float = 0.1,
    closed_every: float = 0.3,
) -> AsyncIterator[DeploymentView | None]:
    """Yield the deployment's row each time it changes, until it ends; None until it exists.
    The row (one primary-key read) is looked at every `interval`, so a waiting command sees
    the end within that; whether the workflow closed without the row ending, which only
    Temporal can say, is asked at most every `closed_every`."""
    last: tuple[str, int] | None = None
    closed_polls = 0
    clock = asyncio.get_running_loop().time
    asked = float("-inf")
    while True:
        view = await asyncio.to_thread(queries.get_deployment, engine, deployment_id)
        key = (view.phase, view.progress) if view else ("", -1)
        if key != last:
            last = key
            yield view
        if view is not None and view.status in TERMINAL:
            return
        if clock() - asked >= closed_every:
            asked = clock()
            if await workflow_closed(client, deployment_id):
                closed_polls += 1
                if closed_polls > 3:
                    return
        await asyncio.sleep(interval)


def status(engine: sa.Engine, deployment_id: str) -> DeploymentView | None:
    """The deployment's row, or None if none was recorded. It waits on the database: async
    code calls it in a thread (`asyncio.to_thread`)."""
    return queries.get_deployment(engine, validate_deployment_id(deployment_id))


def logs(engine: sa.Engine, deployment_id: str) -> list[LogEntry]:
    """The deployment's log, oldest first. It waits on the database: async code calls it in
    a thread (`asyncio.to_thread`)."""
    return queries.get_logs(engine, validate_deployment_id(deployment_id))


async def reconcile_now(client: Client, settings: Settings) -> ReconcileReport:
    """One reconcile pass for this server, now. Two requests at once share one run (one
    workflow id); a scheduled run at the same moment does its work once (advisory locks).
    It cleans up after every project, not only those whose deployments changed."""
    from workflows.reconcile import ReconcileWorkflow

    return await client.execute_workflow(
        ReconcileWorkflow.run,
        reconcile_input(settings).model_copy(update={"every_project": True}),
        id=reconcile_schedule_id(settings.server) + "-now",
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def follow_logs(
    client: Client, engine: sa.Engine, deployment_id: str, after: int = 0, interval: float = 0.3
) -> AsyncIterator[LogEntry]:
    """Yield the deployment's log lines after row `after` as they are written, until it ends."""
    while True:
        entries = await asyncio.to_thread(queries.get_logs, engine, deployment_id, after)
        for entry in entries:
            after = entry.id
            yield entry
        view = await asyncio.to_thread(status, engine, deployment_id)
        if view is not None and view.status in TERMINAL and not entries:
            return
        if view is None and await workflow_closed(client, deployment_id):
            return
        await asyncio.sleep(interval)
