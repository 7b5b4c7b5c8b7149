"""Pydantic models passed through Temporal (workflow and activity inputs and results) and
read back from the database."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from slipway.phases import Phase, Status

Metadata = dict[str, JsonValue]
"""Phase metadata as stored: camelCase keys, JSON values, never a secret."""


class DeploymentInput(BaseModel):
    """What a deployment is asked to do; the workflow's only argument."""

    model_config = ConfigDict(frozen=True)

    deployment_id: str
    project: str
    upload_id: str
    host_queue: str = Field(description="The task queue of the server that hosts the project.")
    source_commit: str | None = None
    source: str = Field(default="", description="A person-readable description of the upload.")
    heartbeat_timeout_seconds: float = Field(
        default=10.0, description="How soon a dead worker's activity is retried elsewhere."
    )


class PhaseInput(BaseModel):
    """The common argument of the phase activities: which deployment, and the metadata the
    workflow has gathered so far, which the phase's transition records."""

    deployment: DeploymentInput
    metadata: Metadata = Field(default_factory=dict)


class SourceResult(BaseModel):
    """What pulling_source found in the upload."""

    upload_id: str
    digest: str
    files: int
    bytes: int


class BuildResult(BaseModel):
    """What building made of the source: its type and where the site's root is inside it."""

    detected_type: str
    deployment_type: str
    site_root: str


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
    """The release `current` pointed to before the switch, to put back if the deployment fails."""

    previous_release: str | None


class RouteResult(BaseModel):
    """Whether the route's content changed (an identical rewrite is a no-op), and the version
    Traefik reports once it has loaded it."""

    changed: bool
    version: str


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
    metadata: Metadata


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


class LogEntry(BaseModel):
    """One row of a deployment's log."""

    id: int
    timestamp: datetime
    level: str
    phase: str
    message: str
    metadata: Metadata
