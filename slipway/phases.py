"""The deployment phases, their order, their progress and the coarse status each implies."""

from enum import StrEnum


class Phase(StrEnum):
    """A deployment phase; the order of declaration is the order a deployment runs."""

    QUEUED = "queued"
    PULLING_SOURCE = "pulling_source"
    BUILDING = "building"
    COPYING_FILES = "copying_files"
    CREATING_SYMLINKS = "creating_symlinks"
    UPDATING_ROUTES = "updating_routes"
    HEALTH_CHECK = "health_check"
    ACTIVE = "active"
    FAILED = "failed"


class Status(StrEnum):
    """The coarse state of a deployment, as the stuck query and people filter on it."""

    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    ACTIVE = "active"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


class DeploymentType(StrEnum):
    """What a deployment releases: files Caddy serves, or an app's container."""

    STATIC = "static"
    CONTAINER = "container"


class Mode(StrEnum):
    """What a run of a deployment's workflow does."""

    DEPLOY = "deploy"
    """Every phase, from the upload."""
    ROLLBACK = "rollback"
    """Switch to a kept earlier release: no pulling, building or copying."""
    ABANDON = "abandon"
    """Resolve an orphaned deployment as failed: put back what it replaced, record why."""


WORK_PHASES: tuple[Phase, ...] = (
    Phase.PULLING_SOURCE,
    Phase.BUILDING,
    Phase.COPYING_FILES,
    Phase.CREATING_SYMLINKS,
    Phase.UPDATING_ROUTES,
    Phase.HEALTH_CHECK,
)
"""The phases that do work, between queued and active."""

PROGRESS: dict[Phase, int] = {
    Phase.QUEUED: 0,
    Phase.PULLING_SOURCE: 10,
    Phase.BUILDING: 30,
    Phase.COPYING_FILES: 50,
    Phase.CREATING_SYMLINKS: 70,
    Phase.UPDATING_ROUTES: 80,
    Phase.HEALTH_CHECK: 90,
    Phase.ACTIVE: 100,
    Phase.FAILED: 0,
}
"""Progress when a phase begins; copying_files rises towards creating_symlinks as files land."""

STATUS: dict[Phase, Status] = {
    Phase.QUEUED: Status.QUEUED,
    Phase.PULLING_SOURCE: Status.BUILDING,
    Phase.BUILDING: Status.BUILDING,
    Phase.COPYING_FILES: Status.DEPLOYING,
    Phase.CREATING_SYMLINKS: Status.DEPLOYING,
    Phase.UPDATING_ROUTES: Status.DEPLOYING,
    Phase.HEALTH_CHECK: Status.DEPLOYING,
    Phase.ACTIVE: Status.ACTIVE,
    Phase.FAILED: Status.FAILED,
}

IN_PROGRESS: frozenset[Status] = frozenset({Status.BUILDING, Status.DEPLOYING})
"""Statuses of a deployment that some worker should be advancing right now."""

WAITING: frozenset[Status] = frozenset({Status.QUEUED, *IN_PROGRESS})
"""Statuses of a deployment that has not ended: some workflow should still advance it."""

TERMINAL: frozenset[Status] = frozenset(Status) - WAITING
"""Statuses a deployment ends in (until it is resumed)."""


def copy_progress(files_copied: int, total_files: int) -> int:
    """Progress while copying: from copying_files' start up to just below the next phase."""
    start = PROGRESS[Phase.COPYING_FILES]
    span = PROGRESS[Phase.CREATING_SYMLINKS] - start - 1
    if total_files <= 0:
        return start
    return start + (span * min(files_copied, total_files)) // total_files
