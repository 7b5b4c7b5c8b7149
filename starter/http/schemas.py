"""What the API answers: the seed's progress shape (phase, progress, metadata, updatedAt)
plus status, in camel case like the stored metadata."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway.analytics import Eta
from slipway.diagnosis import Diagnosis, Kind
from slipway.models import DeploymentView, Metadata
from slipway.phases import Phase, Status


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
