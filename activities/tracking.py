"""Activities that only touch the database: they run on the shared task queue."""

from collections.abc import Callable

import sqlalchemy as sa
from temporalio import activity

from activities.heartbeat import heartbeating
from slipway import records
from slipway.models import DeploymentInput, PhaseInput
from slipway.phases import Phase


class TrackingActivities:
    """Writes of the deployment projection that belong to no server."""

    def __init__(self, engine: sa.Engine, base_domain: str) -> None:
        self.engine = engine
        self.base_domain = base_domain

    @activity.defn(name="register_deployment")
    async def register(self, deployment: DeploymentInput) -> None:
        """Record the project and the deployment in phase queued; idempotent because both
        inserts skip rows that exist."""
        domain = f"{deployment.project}.{self.base_domain}"
        await heartbeating(lambda _: records.register(self.engine, deployment, domain))

    @activity.defn(name="mark_active")
    async def mark_active(self, inp: PhaseInput) -> None:
        """Record the active transition; idempotent through the transition's event key."""
        await heartbeating(
            lambda _: records.record_transition(
                self.engine, inp.deployment.deployment_id, Phase.ACTIVE, inp.metadata
            )
        )

    @activity.defn(name="mark_failed")
    async def mark_failed(self, inp: PhaseInput) -> None:
        """Record the failed transition with its reason; idempotent through its event key."""
        await heartbeating(
            lambda _: records.record_transition(
                self.engine,
                inp.deployment.deployment_id,
                Phase.FAILED,
                inp.metadata,
                level="error",
            )
        )

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [self.register, self.mark_active, self.mark_failed]
