"""Activities that only touch the database: they run on the shared task queue."""

from collections.abc import Callable

import sqlalchemy as sa
from temporalio import activity

from activities.heartbeat import heartbeating
from slipway import previews, queries, records
from slipway.errors import BadInputError
from slipway.metadata import PhaseMetadata
from slipway.models import DeploymentInput, FailInput, PhaseInput, SkipInput, SupersedeInput
from slipway.phases import Phase, Status
from slipway.project_sources import ProjectError, describe, project_git
from slipway.settings import Settings, host_task_queue


class TrackingActivities:
    """Writes of the deployment projection that belong to no server."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.base_domain = settings.base_domain

    @activity.defn(name="place_deployment")
    async def place(self, deployment: DeploymentInput) -> DeploymentInput:
        """Complete a deployment a service sent with only what to deploy: the server its
        project is pinned to (this one's for a new project) and its queue, this side's
        timeouts, and with neither upload nor repository, the project's own repository (a
        preview's: the project it previews); refused if its name would make one project
        another's (`previews.check_site`). Idempotent: it only reads."""

        def run(_: object) -> DeploymentInput:
            s = self.settings
            try:
                previews.check_site(self.engine, deployment.project, deployment.preview_of)
            except previews.SiteClashError as err:
                raise BadInputError(str(err)) from None
            server = queries.project_server(self.engine, deployment.owner) or s.server
            git = deployment.git
            if git is None and not deployment.upload_id:
                try:
                    git = project_git(self.engine, deployment.owner)
                except ProjectError as err:
                    raise BadInputError(str(err)) from None
            return DeploymentInput(
                **deployment.model_dump(
                    exclude={"git", "server", "host_queue", "source"}
                    | {"heartbeat_timeout_seconds", "phase_deadlines", "bake_seconds"}
                    | {"bake_probe_seconds", "restart_limit"}
                ),
                git=git,
                server=server,
                host_queue=host_task_queue(s.task_queue, server),
                source=deployment.source or (describe(git) if git else "upload"),
                heartbeat_timeout_seconds=s.heartbeat_timeout_seconds,
                phase_deadlines=s.phase_deadlines,
                bake_seconds=s.bake_seconds,
                bake_probe_seconds=s.bake_probe_seconds,
                restart_limit=s.restart_limit,
            )

        return await heartbeating(run)

    def _register(self, inp: PhaseInput) -> None:
        d = inp.deployment
        records.register(self.engine, d, f"{d.project}.{self.base_domain}", inp.metadata)

    @activity.defn(name="register_deployment")
    async def register(self, inp: PhaseInput) -> Status:
        """Record the project and the deployment in phase queued, and return the row's status
        (a row that is not queued any more was recorded before). Idempotent because both
        inserts skip rows that exist."""

        def run(_: object) -> Status:
            self._register(inp)
            return queries.status_of(self.engine, inp.deployment.deployment_id)

        return await heartbeating(run)

    @activity.defn(name="skip_phase")
    async def skip_phase(self, inp: SkipInput) -> None:
        """Record a phase that does not apply as a skipped transition; idempotent through the
        transition's event key."""
        await heartbeating(
            lambda _: records.record_transition(
                self.engine,
                inp.deployment.deployment_id,
                inp.phase,
                inp.metadata.merged(PhaseMetadata(skipped=True)),
                round=inp.deployment.round,
            )
        )

    @activity.defn(name="mark_failed")
    async def mark_failed(self, inp: FailInput) -> None:
        """Record the failed (or cancelled) transition with its reason; idempotent through
        its event key. A deployment cancelled while queued is registered first; one whose
        workflow could not start is recorded only while its row is its project's and
        queued (the row of another run is not this deployment's to end)."""

        def fail(_: object) -> None:
            self._register(inp)
            records.record_transition(
                self.engine,
                inp.deployment.deployment_id,
                Phase.FAILED,
                inp.metadata,
                round=inp.deployment.round,
                status=inp.status,
                level="warning" if inp.status is Status.CANCELLED else "error",
                queued_of=inp.deployment.project if inp.unstarted else None,
            )

        await heartbeating(fail)

    @activity.defn(name="supersede")
    async def supersede(self, inp: SupersedeInput) -> None:
        """Record a queued deployment as superseded by a newer one; idempotent because only
        a deployment still queued changes."""

        def mark(_: object) -> None:
            self._register(PhaseInput(deployment=inp.deployment))
            records.supersede(self.engine, inp.deployment.deployment_id, inp.by)

        await heartbeating(mark)

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [self.place, self.register, self.skip_phase, self.mark_failed, self.supersede]
