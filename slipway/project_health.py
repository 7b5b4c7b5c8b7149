"""A project's health as the monitor keeps it and people read it, with its alerts: models
only, so the CLI draws them (from this machine or the API's answers) without the monitor's
database code."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ProjectHealth(BaseModel):
    """What the monitor knows of a project, kept under `projects.metadata.health`."""

    status: str = "unknown"
    """healthy, degraded (failing, or healing), down, or stopped (by `slipway stop`)."""
    last_check: str | None = Field(default=None, alias="lastCheck")
    consecutive_failures: int = Field(default=0, alias="consecutiveFailures")
    failing_since: str | None = Field(default=None, alias="failingSince")
    """When the current run of failed checks began: it names the outage's episode."""
    restarts: list[str] = Field(default_factory=list)
    """When the project's container restarted, within the restart window: the monitor's
    restarts and Docker's own (counted from `engine_restarts`)."""
    container: str | None = None
    """The container last looked at."""
    engine_restarts: int = Field(default=0, alias="engineRestarts")
    """Docker's `RestartCount` of that container at the last look."""
    healing_paused: bool = Field(default=False, alias="healingPaused")
    """Set by a restart loop: no more restarts until a new deployment or `slipway heal`."""
    release: str | None = None
    detail: str = ""

    model_config = {"populate_by_name": True}

    @property
    def restarts_in_window(self) -> int:
        return len(self.restarts)


class Alert(BaseModel):
    """An alert as people read it."""

    id: int
    project: str
    kind: str
    episode: str
    message: str
    metadata: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None
    resolved_at: datetime | None


class ProjectSummary(BaseModel):
    """A project as the `projects` table shows it."""

    name: str
    domain: str
    health: ProjectHealth
    serving: str | None
    deployments: int
