"""Pydantic models passed through Temporal (workflow and activity inputs and results) and
read back from the database."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway.metadata import Metadata, PhaseMetadata
from slipway.phases import DeploymentType, Mode, Phase, Status

__all__ = ["DeploymentType", "Metadata", "Mode", "PhaseMetadata"]


class GitSource(BaseModel):
    """A git repository to deploy from: its URL (never with credentials: those are the
    project's, sealed, and never travel with a deployment) and a branch, tag or commit."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(min_length=1, max_length=2000)
    ref: str | None = Field(
        default=None,
        max_length=255,
        description="Branch, tag or commit; default: the remote's HEAD.",
    )


class DeploymentInput(BaseModel):
    """What a deployment is asked to do; the workflow's only argument."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str = Field(
        default="", description="Empty: the project's workflow gives it one (a UUID)."
    )
    project: str
    upload_id: str = Field(default="", description="Empty for a rollback or a git source.")
    git: GitSource | None = Field(default=None, description="A repository to deploy from.")
    host_queue: str = Field(
        default="",
        description="The task queue of the server that hosts the project; empty: the "
        "project's workflow places it (the server it is pinned to, a worker's settings).",
    )
    server: str = Field(default="local", description="That server's name.")
    mode: Mode = Mode.DEPLOY
    release_id: str | None = Field(
        default=None, description="The release to switch to, when it is not this deployment's."
    )
    round: int = Field(default=0, description="0, then 1, 2... for each resume.")
    reason: str = Field(default="", description="Why, for a rollback or an abandoned run.")
    orphaned_in: Phase | None = Field(
        default=None, description="For an abandoned run: the phase the orphan was left in."
    )
    source_commit: str | None = None
    source: str = Field(default="", description="A person-readable description of the upload.")
    heartbeat_timeout_seconds: float = Field(
        default=10.0, description="How soon a dead worker's activity is retried elsewhere."
    )
    phase_deadlines: dict[str, float] = Field(
        default_factory=dict, description="Seconds per phase, overriding the defaults."
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment a deployment recorded before environment versions carried: "
        "names in clear, values sealed (slipway.secrets). New deployments carry only "
        "`env_version`; their own overrides are sealed in their row.",
    )
    env_version: int | None = Field(
        default=None,
        description="The version of the project's environment its container runs with "
        "(0: none set); the activity that starts it unseals the values.",
    )
    deployment_type: DeploymentType | None = Field(
        default=None, description="For a rollback: the type of the release it returns to."
    )
    bake_seconds: float = Field(
        default=0.0, description="How long the release is watched after the switch."
    )
    restart_limit: int = Field(default=3, description="Container restarts that fail a bake.")
    bake_probe_seconds: float = Field(
        default=2.0, gt=0, description="How often the release is looked at while it bakes."
    )
    registered: bool = Field(
        default=False,
        description="It is recorded queued and has not run before (set by whoever recorded "
        "it: the API, or the project's workflow), so it is not recorded again.",
    )
    preview_of: str = Field(
        default="",
        description="For a preview (its `project` then `<name>--<project>`): the project it "
        "previews, whose repository, credentials and server it uses.",
    )
    release_from: str = Field(
        default="",
        description="For a promotion: the preview whose release this switches the project to, "
        "adopted into the project's own releases first.",
    )

    @property
    def release(self) -> str:
        """The id of the release directory this deployment serves."""
        return self.release_id or self.deployment_id

    @property
    def owner(self) -> str:
        """The project whose repository, credentials and settings the deployment uses: its
        own, or for a preview the project it previews."""
        return self.preview_of or self.project


class ProjectInput(BaseModel):
    """The per-project serializer's argument: carried over when it continues as new."""

    project: str
    pending: list[DeploymentInput] = Field(default_factory=list)


class ProjectState(BaseModel):
    """The answer to the project workflow's `state` query."""

    project: str
    running: str | None
    queued: list[str]


class TurnRequest(BaseModel):
    """A project's serializer asks for the project's turn (see `slipway.turns`): as long as a
    deployment started directly runs, or for `within_seconds` at most; with `cancel`, that
    deployment is cancelled first."""

    project: str
    within_seconds: float | None = None
    cancel: bool = False


class TurnAnswer(BaseModel):
    """The turn is the serializer's, or (`holder`) still the deployment that runs."""

    holder: str | None = None


class PhaseInput(BaseModel):
    """The common argument of the phase activities: which deployment, and the metadata the
    workflow has gathered so far, which the phase's transition records."""

    deployment: DeploymentInput
    metadata: PhaseMetadata = Field(default_factory=PhaseMetadata)


class SourceResult(BaseModel):
    """What pulling_source found in the upload (for a git source: in the commit it resolved,
    exported as an upload)."""

    upload_id: str
    digest: str
    files: int
    bytes: int
    commit: str | None = Field(default=None, description="The full SHA a git ref resolved to.")
    ref: str | None = Field(default=None, description="The ref it was asked for.")


class BuildResult(BaseModel):
    """What building made of the source: its type, where a static site's root is inside it,
    and for a container its image."""

    detected_type: str
    deployment_type: DeploymentType
    site_root: str = ""
    image_id: str | None = None


class CopyInput(PhaseInput):
    """copying_files needs the site's root inside the source."""

    site_root: str


class CopyResult(BaseModel):
    """What copying_files did; `linked` files were already in the content store."""

    files_copied: int
    total_files: int
    bytes: int
    linked: int


class SwitchResult(BaseModel):
    """The release that served before the switch, and where the public route sent traffic
    before it (for an app: the old container, removed once the new release has baked)."""

    previous_release: str | None
    previous_url: str | None = None
    route_version: str = Field(default="", description="The public route's version now.")
    has_webhook: bool = Field(
        default=True,
        description="Whether a webhook (the project's, else the server's) was set at the "
        "switch, so the deployment's end has somewhere to go; a switch recorded before this "
        "was read says True.",
    )


class RetireInput(BaseModel):
    """The target that served before a switch, whose container is now to go."""

    deployment: DeploymentInput
    url: str


class ProbeResult(BaseModel):
    """One look at a release that serves: does it still answer, how often has it restarted."""

    ok: bool
    detail: str
    restarts: int = 0


class MonitorInput(BaseModel):
    """What one monitor pass checks, and what counts as a restart loop or an outage."""

    host_queue: str
    restart_limit: int = 3
    restart_window_seconds: float = 600.0
    down_after_failures: int = 2
    webhook_url: str | None = None


class MonitorReport(BaseModel):
    """One monitor pass: projects checked, containers restarted, alerts raised."""

    checked: dict[str, str] = Field(default_factory=dict)
    restarted: list[str] = Field(default_factory=list)
    alerts: list[int] = Field(default_factory=list)


class DeliverInput(BaseModel):
    """An alert to POST to a webhook."""

    alert_id: int
    url: str


class RouteResult(BaseModel):
    """Whether the route's content changed (an identical rewrite is a no-op), the version
    Traefik reports once it has loaded it, and for a container the one started for it."""

    changed: bool
    version: str
    container_id: str | None = None
    port: int | None = None


class HealthInput(PhaseInput):
    """health_check waits for this route version as well as for the release."""

    route_version: str


class HealthResult(BaseModel):
    """How the release proved it serves."""

    url: str
    attempts: int


class DeploymentProgress(BaseModel):
    """The answer to the workflow's `progress` query."""

    deployment_id: str
    project: str
    phase: Phase
    progress: int
    status: Status
    metadata: PhaseMetadata


class DeploymentView(BaseModel):
    """A deployment row as people read it."""

    id: str
    project: str
    status: Status
    phase: Phase
    progress: int
    metadata: Metadata
    updated_at: datetime
    phase_updated_at: datetime
    created_at: datetime
    workflow_id: str
    source: str

    @property
    def details(self) -> PhaseMetadata:
        """The metadata, typed."""
        return PhaseMetadata.read(self.metadata)

    @property
    def release(self) -> str:
        """The release this deployment serves: its own, or the one it rolled back to."""
        return self.details.release or self.id


class LogEntry(BaseModel):
    """One row of a deployment's log."""

    id: int
    timestamp: datetime
    level: str
    phase: str
    message: str
    metadata: Metadata


class FailInput(PhaseInput):
    """The failed transition: cancelled or failed."""

    status: Status
    unstarted: bool = False
    """A deployment whose workflow could not start: recorded only while its row is its
    project's and still queued, so that it never overwrites the row of a run under way."""


class SkipInput(PhaseInput):
    """A phase that does not apply to this deployment, recorded as skipped."""

    phase: Phase


class EndNotice(BaseModel):
    """How a deployment ended, for its notification: never a secret."""

    deployment_id: str
    project: str
    round: int = 0
    status: Status
    phase: Phase
    error: str | None = None
    commit: str | None = None
    url: str | None = None


class SupersedeInput(BaseModel):
    """An older queued deployment that a newer one replaces before it ever runs."""

    deployment: DeploymentInput
    by: str


class ReconcileInput(BaseModel):
    """What one reconcile run does, and for which server."""

    host_queue: str
    orphan_policy: str = "fail"
    orphan_grace_seconds: float = 60.0
    keep_releases: int = 5
    work_retention_seconds: float = 3600.0
    upload_retention_seconds: float = 7 * 86400.0
    preview_ttl_seconds: float = Field(
        default=7 * 86400.0, description="A preview not deployed for this long is removed."
    )
    every_project: bool = Field(
        default=False,
        description="Clean up after every project, not only those whose deployments changed "
        "since the last pass: a pass someone asked for.",
    )


class PreviewRemoval(BaseModel):
    """A preview to remove from its server, and why (its branch deleted, or expired)."""

    site: str = Field(description="`<name>--<project>`: what it is routed and kept under.")
    project: str
    name: str
    reason: str
    host_queue: str


class PreviewView(BaseModel):
    """A preview as people see it: where it answers, what serves there, and until when. The
    API answers it in camel case, as its other documents."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    project: str
    name: str
    site: str
    url: str
    deployment_id: str | None
    status: Status | None
    release: str | None
    updated_at: datetime | None
    expires_at: datetime | None


class OrphanReport(BaseModel):
    """Orphaned deployments found and how each was resolved."""

    locked: bool = Field(description="False if another reconciler held the lock and this skipped.")
    resolved: dict[str, str] = Field(default_factory=dict)


class CleanupReport(BaseModel):
    """What a host cleanup removed."""

    locked: bool
    looked_at: list[str] = Field(
        default_factory=list,
        description="The projects whose releases and routes the pass looked at: those whose "
        "deployments changed since the last pass, or every one.",
    )
    releases: list[str] = Field(default_factory=list)
    work_dirs: list[str] = Field(default_factory=list)
    routes: list[str] = Field(default_factory=list)
    uploads: list[str] = Field(default_factory=list)
    store_objects: int = 0
    blobs: int = Field(default=0, description="Uploaded contents no kept manifest refers to.")
    containers: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)


class ReconcileReport(BaseModel):
    """One reconcile run's result."""

    orphans: OrphanReport
    cleanup: CleanupReport
    expired_previews: list[str] = Field(
        default_factory=list, description="Previews past their time to live, sent for removal."
    )


class LifecycleAction(StrEnum):
    """What `slipway stop/start/restart/delete` asks of a project."""

    STOP = "stop"
    START = "start"
    RESTART = "restart"
    DELETE = "delete"


def busy_message(project: str, busy: list[str], action: LifecycleAction) -> str:
    """Why an action is refused while deployments of the project are queued or under way."""
    how = "or delete with --cancel" if action is LifecycleAction.DELETE else "or cancel them"
    return (
        f"{project} has deployments queued or under way ({', '.join(busy)}): cannot "
        f"{action.value} it now; wait for them to end, {how}"
    )


class LifecycleRequest(BaseModel):
    """A lifecycle action for the project's serializer, which runs it between two deployments.
    `host_queues` are the queues of the servers the project has files on (its own first);
    `cancel` lets a delete cancel the deployments running or waiting instead of refusing."""

    project: str
    action: LifecycleAction
    host_queues: list[str] = Field(min_length=1)
    cancel: bool = False
    health_timeout_seconds: float = 60.0
    pickup_seconds: float | None = None
    """How long each server's worker has to take up its part (None: as long as it takes, as
    requests sent before this setting)."""
    cancel_wait_seconds: float | None = None
    """How long a delete with `cancel` waits for what it cancelled to end (None: the
    workflow's own default, as requests sent before this setting)."""


class LifecycleResult(BaseModel):
    """What a lifecycle action did, in a sentence, and the project's state after it."""

    project: str
    action: LifecycleAction
    state: str
    message: str


class HostLifecycleInput(BaseModel):
    """A stop, start or restart on the project's server; `operation_id` names what it makes
    (a restart's new container), so a retry adopts it."""

    project: str
    action: LifecycleAction
    operation_id: str
    health_timeout_seconds: float = 60.0


class LifecycleRecord(BaseModel):
    """A lifecycle action done, for the project's history and state (once per operation)."""

    project: str
    action: LifecycleAction
    operation_id: str
    message: str
    stopped: bool


class ProjectInventory(BaseModel):
    """What a deleted project leaves to remove: its deployments (their work dirs, releases,
    containers and images carry their ids) and their uploads."""

    deployment_ids: list[str] = Field(default_factory=list)
    upload_ids: list[str] = Field(default_factory=list)


class RemovalInput(BaseModel):
    """A project's files and containers to remove from one server."""

    project: str
    inventory: ProjectInventory


class RemovalReport(BaseModel):
    """What one server removed of a deleted project."""

    containers: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
