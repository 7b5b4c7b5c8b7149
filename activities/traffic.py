"""The host-bound activities that move traffic: the switch at active, the looks during the
bake window, retiring the previous container, and compensation. They run on the server's own
task queue, like the work phases."""

from collections.abc import Callable

import sqlalchemy as sa
from docker.errors import DockerException
from temporalio import activity

from activities.adapters.beat import Beat
from activities.adapters.releases import current_release
from activities.failures import check_names
from activities.heartbeat import heartbeating
from activities.phases import active, compensation
from activities.upkeep import probes
from slipway import lifecycle, records
from slipway.metadata import PhaseMetadata
from slipway.models import DeploymentInput, PhaseInput, ProbeResult, RetireInput, SwitchResult
from slipway.phases import Phase
from slipway.project_sources import source_of
from slipway.settings import Settings


class TrafficActivities:
    """Activities of one server that move or watch its traffic."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.layout = settings.layout

    @activity.defn(name="activate")
    async def activate(self, inp: PhaseInput) -> SwitchResult:
        """active: traffic moves (see `active.switch`), and only once the public route serves
        the release is the deployment recorded active; a stopped project runs again, recorded
        in the same transaction. It says whether a webhook is set to announce the end to.
        Idempotent: the switch leaves alone what is in place, the transition is recorded
        once, only a project still recorded stopped is recorded started, and the webhook is
        only read."""
        d = inp.deployment
        check_names(d)

        def promote(beat: Beat) -> SwitchResult:
            switched = active.switch(self.settings, d, beat)
            metadata = inp.metadata.merged(
                PhaseMetadata(
                    previous_release=switched.previous_release,
                    route_version=switched.route_version,
                )
            )
            records.record_transition(
                self.engine,
                d.deployment_id,
                Phase.ACTIVE,
                metadata,
                round=d.round,
                also=lambda conn: lifecycle.started_by_deployment(conn, d.project, d.deployment_id),
            )
            webhook = self.settings.notify_url or source_of(self.engine, d.project).notify_url
            return switched.model_copy(update={"has_webhook": bool(webhook)})

        return await heartbeating(promote)

    @activity.defn(name="probe_release")
    async def probe_release(self, inp: PhaseInput) -> ProbeResult:
        """Look once at the release serving the project (see `probes.probe`); it only reads."""
        d = inp.deployment
        check_names(d)

        def look(_: Beat) -> ProbeResult:
            release = current_release(self.layout, d.project)
            return probes.probe(self.settings, self.layout, d.project, release)[0]

        return await heartbeating(look)

    @activity.defn(name="retire_previous")
    async def retire_previous(self, inp: RetireInput) -> str | None:
        """Remove the container that served before the switch, once the new release has
        baked (see `active.retire`). A failure is logged, not raised: the deployment is
        active, and the reconciler removes leftovers."""
        d = inp.deployment
        check_names(d)

        def retire(_: Beat) -> str | None:
            try:
                removed = active.retire(self.settings, d.project, inp.url)
            except DockerException as err:
                message = f"The previous container at {inp.url} was not removed: {err}"
                records.add_log(
                    self.engine, d.deployment_id, Phase.ACTIVE, message, level="warning"
                )
                return None
            if removed:
                records.add_log(
                    self.engine,
                    d.deployment_id,
                    Phase.ACTIVE,
                    f"Previous container {removed} removed after the switch",
                    event_key=f"retired:{d.round}",
                )
            return removed

        return await heartbeating(retire)

    @activity.defn(name="restore_previous")
    async def restore_previous(self, d: DeploymentInput) -> None:
        """Compensation (see `compensation.restore`)."""
        check_names(d)
        await heartbeating(lambda beat: compensation.restore(self.settings, d, beat))

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [self.activate, self.probe_release, self.retire_previous, self.restore_previous]
