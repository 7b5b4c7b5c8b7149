"""What the API answers: the seed's progress shape (phase, progress, metadata, updatedAt)
plus status, in camel case like the stored metadata."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway.analytics import Eta
from slipway.diagnosis import Diagnosis, Kind
from slipway.models import DeploymentView, Metadata
from slipway.phases import Phase, Status
from starter.http.fields import (
    DIGEST,
    ENTRY_PATH,
    LINK_TARGET,
    Commit,
    Digest,
    Env,
    PreviewName,
    ProjectName,
)


class ApiModel(BaseModel):
    """Snake case in Python, camel case on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Deployment(ApiModel):
    """A deployment as `GET /api/deployments/{id}` shows it."""

    id: str
    project: str
    status: Status
    phase: Phase
    progress: int = Field(ge=0, le=100)
    metadata: Metadata
    updated_at: datetime
    phase_updated_at: datetime
    created_at: datetime
    source: str
    workflow_id: str
    temporal_url: str = Field(description="The deployment's workflow in the Temporal UI.")
    eta: Eta | None = Field(
        default=None, description="While it runs: when it should end, from recent medians."
    )

    @classmethod
    def of(cls, view: DeploymentView, temporal_url: str, eta: Eta | None) -> "Deployment":
        """The API's view of a deployment row."""
        return cls(**view.model_dump(), temporal_url=temporal_url, eta=eta)


class Accepted(ApiModel):
    """A request that was handed to Temporal; what it does next shows on the deployment."""

    id: str
    message: str


class Problem(ApiModel):
    """Every error: one sentence a person can act on."""

    detail: str


class Stuck(ApiModel):
    """A deployment that has not moved for a while, and what it is doing."""

    id: str
    project: str
    status: Status
    phase: Phase
    progress: int
    phase_updated_at: datetime
    kind: Kind
    detail: str

    @classmethod
    def of(cls, found: Diagnosis) -> "Stuck":
        """The API's view of a diagnosis."""
        view = found.view
        return cls(
            id=view.id,
            project=view.project,
            status=view.status,
            phase=view.phase,
            progress=view.progress,
            phase_updated_at=view.phase_updated_at,
            kind=found.kind,
            detail=found.detail,
        )


class RollbackRequest(ApiModel):
    """Which release to go back to: that of deployment `to`, else the one before."""

    to: uuid.UUID | None = None


class Health(ApiModel):
    """The process answers."""

    status: str = "ok"


EntryPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        pattern=ENTRY_PATH,
        description="Relative, canonical, '/'-separated; within the server's path length and "
        "depth limits (SLIPWAY_UNPACK_MAX_PATH_LENGTH, SLIPWAY_UNPACK_MAX_DEPTH).",
    ),
]


class DirEntry(ApiModel):
    """A directory (its parents need not be listed)."""

    path: EntryPath
    kind: Literal["dir"]


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer, not true or false")
    return value


Integer = Annotated[int, BeforeValidator(_not_a_boolean)]
"""A JSON integer (2.0 is one; true is not)."""


class FileEntry(ApiModel):
    """A file: its content is the blob named by `sha256`."""

    path: EntryPath
    kind: Literal["file"]
    size: Integer = Field(ge=0, le=2**62, description="Bytes; the blob must have as many.")
    mode: Integer = Field(
        default=0o644, ge=0, le=0o7777, description="Only whether it is executable is kept."
    )
    sha256: Digest = Field(description="The sha256 of its content, in lowercase hex.")


class LinkEntry(ApiModel):
    """A symbolic link; it must lead somewhere inside the tree, judged once it is whole."""

    path: EntryPath
    kind: Literal["link"]
    target: str = Field(min_length=1, max_length=4096, pattern=LINK_TARGET)


ManifestEntry = Annotated[FileEntry | DirEntry | LinkEntry, Field(discriminator="kind")]


class UploadRequest(ApiModel):
    """A tree to upload, entry by entry. Every path is one thing, nothing lies under a file
    or a link, two entries with the same content give the same size, and the tree is within
    the server's unpack limits (SLIPWAY_UNPACK_*): a 422 whose detail begins `manifest:`
    names the entry that breaks a rule."""

    entries: list[ManifestEntry]


class UploadChanges(ApiModel):
    """A tree to upload, as its changes to an upload made before: the entries new or changed
    (each replacing the entry at its path) and the paths no longer there (each must be an
    entry of that upload). The tree they make is held to every rule and limit a whole
    manifest is (`POST /api/uploads`)."""

    entries: list[ManifestEntry]
    removed: list[EntryPath] = Field(default_factory=list)


class UploadAnswer(ApiModel):
    """The upload's id (the sha256 of its canonical manifest) and the contents the server
    lacks, to PUT to /api/blobs/{sha256} before the deployment is asked for."""

    upload_id: str = Field(pattern=DIGEST)
    missing: list[Digest]


class UploadDeployment(ApiModel):
    """A deployment of an upload made through /api/uploads and /api/blobs."""

    project: ProjectName = Field(description="Project name, a DNS label.")
    upload_id: Digest = Field(description="The id /api/uploads answered.")
    commit: Commit | None = Field(default=None, description="Source commit, recorded.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="What was uploaded (a directory's name), recorded as its source.",
    )
    env: Env = Field(
        default_factory=dict,
        description="Environment for an app's container; the values are sealed at once.",
    )
    preview: PreviewName | None = Field(
        default=None,
        description="Deploy the project's preview of this name instead, at "
        "<preview>--<project>; production is not touched.",
    )
