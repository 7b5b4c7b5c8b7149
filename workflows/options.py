"""How long each phase may take, where its activity runs and how it retries."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from slipway.phases import WORK_PHASES, Phase

PHASE_DEADLINES: dict[Phase, timedelta] = {
    Phase.QUEUED: timedelta(minutes=10),
    Phase.PULLING_SOURCE: timedelta(minutes=15),
    Phase.BUILDING: timedelta(minutes=30),
    Phase.COPYING_FILES: timedelta(minutes=30),
    Phase.CREATING_SYMLINKS: timedelta(minutes=5),
    Phase.UPDATING_ROUTES: timedelta(minutes=5),
    Phase.HEALTH_CHECK: timedelta(minutes=10),
    Phase.ACTIVE: timedelta(minutes=5),
    Phase.FAILED: timedelta(minutes=10),
}
"""A phase's activity, retries included, must finish within this, or the deployment fails
with `phase deadline exceeded`; queued and failed bound the database writes."""

HOST_PHASES = frozenset({*WORK_PHASES, Phase.ACTIVE})
"""Phases whose activity runs on the project's server (its own task queue)."""


def deadline(phase: Phase, overrides: dict[str, float]) -> timedelta:
    """The phase's deadline, or the deployment's own override in seconds."""
    if phase.value in overrides:
        return timedelta(seconds=overrides[phase.value])
    return PHASE_DEADLINES[phase]


def retry_policy() -> RetryPolicy:
    """Transient faults (database down, Traefik reloading) retry with backoff until the
    phase's deadline; bad input fails at once."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=["BadInput"],
    )
