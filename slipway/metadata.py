"""A deployment's phase metadata, typed: what the workflow gathers as the deployment moves,
what each transition records, and what a resumed deployment is rebuilt from. Stored and
shown as the same camelCase JSON as ever (`phase_metadata`, the API, the log), so rows
written before this model still read; keys it does not know are kept as they are."""

from pydantic import BaseModel, ConfigDict, JsonValue
from pydantic.alias_generators import to_camel

from slipway.phases import DeploymentType, Mode, Phase

Metadata = dict[str, JsonValue]
"""Phase metadata as stored: camelCase keys, JSON values, never a secret."""


class PhaseMetadata(BaseModel):
    """Every key a deployment's metadata may hold; None means not known (yet), and is left
    out of the stored JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    # The seed's keys.
    source_commit: str | None = None
    upload_id: str | None = None
    files_copied: int | None = None
    total_files: int | None = None
    container_id: str | None = None
    deployment_type: DeploymentType | None = None
    detected_type: str | None = None
    error: str | None = None
    stack: str | None = None
    failed_at: str | None = None

    # Slipway's: where the source came from, and where and how it runs.
    source_ref: str | None = None
    source_url: str | None = None
    release: str | None = None
    mode: Mode | None = None
    host_queue: str | None = None
    server: str | None = None
    round: int | None = None
    reason: str | None = None
    env_version: int | None = None
    """The version of the project's environment the deployment runs with (0: none set)."""

    # What the phases found and did.
    content_digest: str | None = None
    source_files: int | None = None
    image_id: str | None = None
    port: int | None = None
    route_version: str | None = None
    url: str | None = None
    completed_at: str | None = None
    previous_release: str | None = None

    # How it ended, when it did not go active.
    failed_phase: Phase | None = None
    attempt: int | None = None
    compensation_error: str | None = None
    superseded_by: str | None = None

    # On a skipped phase's transition.
    skipped: bool | None = None

    def stored(self) -> Metadata:
        """The camelCase JSON kept in the database and shown by the API and the log."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def merged(self, other: "PhaseMetadata") -> "PhaseMetadata":
        """These keys, with every key `other` knows put over them."""
        return self.model_copy(update=other.model_dump(exclude_none=True))

    @classmethod
    def read(cls, stored: Metadata) -> "PhaseMetadata":
        """The metadata of a stored row, whenever it was written."""
        return cls.model_validate(stored)
