"""How long each activity may take, where it runs and how it retries: one profile per phase,
and profiles of their own for the bookkeeping around the phases (registering, recording a
skipped or failed phase) and for compensation."""

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from slipway.models import DeploymentInput
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
}
"""A phase's activity, retries included, must finish within this, or the deployment fails
with `phase deadline exceeded`; queued bounds the registration."""

BOOKKEEPING_DEADLINE = timedelta(minutes=10)
"""Recording a skipped or failed phase: database writes, retried while PostgreSQL is down."""

COMPENSATION_DEADLINE = timedelta(minutes=5)
"""Putting the previous route and release back."""

FIRST_RETRY = timedelta(milliseconds=200)
"""A failed attempt (a dead worker, once its heartbeat timeout has passed) is tried again
at once on another worker; the backoff then doubles up to 30 s."""

HOST_PHASES = frozenset({*WORK_PHASES, Phase.ACTIVE})
"""Phases whose activity runs on the project's server (its own task queue)."""


@dataclass(frozen=True)
class Profile:
    """The options of one kind of activity call."""

    deadline: timedelta
    on_host: bool
    summary: str


def phase_profile(phase: Phase, deployment: DeploymentInput) -> Profile:
    """A phase's own activity: its deadline (or the deployment's override in seconds), on
    the project's server for the host phases."""
    seconds = deployment.phase_deadlines.get(phase.value)
    deadline = timedelta(seconds=seconds) if seconds is not None else PHASE_DEADLINES[phase]
    return Profile(deadline, phase in HOST_PHASES, phase.value)


def bookkeeping_profile(what: str) -> Profile:
    """A write of the deployment's record that belongs to no phase's work."""
    return Profile(BOOKKEEPING_DEADLINE, on_host=False, summary=what)


def compensation_profile() -> Profile:
    """Compensation, on the project's server."""
    return Profile(COMPENSATION_DEADLINE, on_host=True, summary="restoring the previous release")


def retry_policy() -> RetryPolicy:
    """Transient faults (database down, Traefik reloading) retry with backoff until the
    deadline; bad input fails at once (as does whatever the activity marks non-retryable)."""
    return RetryPolicy(
        initial_interval=FIRST_RETRY,
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=["BadInput"],
    )


def cancellation() -> workflow.ActivityCancellationType:
    """Cancelling a phase waits until its activity has stopped, so compensation never races
    the work it undoes."""
    return workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
