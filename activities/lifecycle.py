"""The activities behind `slipway stop/start/restart/delete`. The host-bound ones run on the
project's server's own queue (they act on its routes, containers and files); the database
ones on the shared queue. The project's serializer runs them between two deployments."""

import asyncio
from collections.abc import Callable

import sqlalchemy as sa
from temporalio import activity

from activities.adapters.beat import Beat
from activities.heartbeat import heartbeating
from activities.upkeep import lifecycle, removal
from slipway import lifecycle as states
from slipway import queries
from slipway.errors import BadInputError
from slipway.models import (
    HostLifecycleInput,
    LifecycleAction,
    LifecycleRecord,
    ProjectInventory,
    RemovalInput,
    RemovalReport,
)
from slipway.names import InvalidNameError, validate_project_name
from slipway.settings import Settings


def _checked(project: str) -> str:
    try:
        return validate_project_name(project)
    except InvalidNameError as err:
        raise BadInputError(str(err)) from None


class LifecycleActivities:
    """Stopping, starting, restarting and deleting projects."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine

    def _env_of(self, deployment_id: str) -> dict[str, str]:
        return lifecycle.unsealed(self.settings, queries.sealed_env(self.engine, deployment_id))

    @activity.defn(name="change_project")
    async def change_project(self, inp: HostLifecycleInput) -> str:
        """Stop, start or restart the project on this server (see `upkeep.lifecycle`); a
        sentence saying what was done. Idempotent: each action checks what is in place
        first, and what a restart makes is named after its operation."""
        project = _checked(inp.project)

        def run(beat: Beat) -> str:
            if inp.action is LifecycleAction.STOP:
                return lifecycle.stop(self.settings, project, beat)
            if inp.action is LifecycleAction.START:
                return lifecycle.start(
                    self.settings,
                    project,
                    inp.operation_id,
                    self._env_of,
                    inp.health_timeout_seconds,
                    beat,
                )
            if inp.action is LifecycleAction.RESTART:
                return lifecycle.restart(
                    self.settings,
                    project,
                    inp.operation_id,
                    self._env_of,
                    inp.health_timeout_seconds,
                    beat,
                )
            raise BadInputError(f"{inp.action.value} is not done by change_project")

        return await heartbeating(run)

    @activity.defn(name="remove_project_files")
    async def remove_project_files(self, inp: RemovalInput) -> RemovalReport:
        """Remove a deleted project's routes, containers, images and files from this server
        (see `upkeep.removal`). Idempotent: it only removes what is there."""
        project = _checked(inp.project)
        return await heartbeating(
            lambda beat: removal.remove_project(self.settings, project, inp.inventory, beat.check)
        )

    @activity.defn(name="record_lifecycle")
    async def record_lifecycle(self, done: LifecycleRecord) -> bool:
        """The project's state and a line in its history (see `slipway.lifecycle.record`).
        Idempotent: keyed by the operation."""
        return await asyncio.to_thread(states.record, self.engine, done)

    @activity.defn(name="project_inventory")
    async def project_inventory(self, project: str) -> ProjectInventory:
        """The deployments and uploads of a project being deleted. It only reads."""
        return await asyncio.to_thread(states.inventory, self.engine, _checked(project))

    @activity.defn(name="remove_project_rows")
    async def remove_project_rows(self, project: str) -> int:
        """Every row of a deleted project, in one transaction. Idempotent: a project already
        gone removes nothing."""
        return await asyncio.to_thread(states.remove_rows, self.engine, _checked(project))

    def on_host(self) -> list[Callable[..., object]]:
        """The activities of this server's own queue."""
        return [self.change_project, self.remove_project_files]

    def shared(self) -> list[Callable[..., object]]:
        """The activities of the shared queue."""
        return [self.record_lifecycle, self.project_inventory, self.remove_project_rows]
