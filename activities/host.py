"""The host-bound phase activities: they act on this server's files and web servers, so they
run on its own task queue. Each records its phase's transition, then does the phase's work."""

import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from temporalio import activity

from activities import copying, detect, health, release, routes, source
from activities.failures import bad_input
from activities.heartbeat import Beat, heartbeating
from activities.manifest import load
from slipway import records
from slipway.layout import Layout
from slipway.models import (
    BuildResult,
    CopyInput,
    CopyResult,
    DeploymentInput,
    HealthInput,
    HealthResult,
    PhaseInput,
    RouteResult,
    SourceResult,
    SwitchResult,
)
from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name
from slipway.phases import Phase, copy_progress
from slipway.settings import Settings

T = TypeVar("T")

PROGRESS_EVERY = 1.0
"""Seconds between progress writes to the deployment row while files copy."""

PUBLIC_CHECK_SECONDS = 15.0
"""How long activation waits for the public route to serve the promoted release."""


def _valid(deployment: DeploymentInput) -> None:
    try:
        validate_project_name(deployment.project)
        validate_deployment_id(deployment.deployment_id)
        validate_deployment_id(deployment.release)
    except InvalidNameError as err:
        bad_input(str(err))


class HostActivities:
    """Activities of one server, configured by its settings."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.layout = Layout(settings.home)

    async def _phase(
        self,
        inp: PhaseInput,
        phase: Phase,
        work: Callable[[Beat], T],
        finished: Callable[[], T | None] | None = None,
    ) -> T:
        """Record the phase's transition, then run `work`, all while heartbeating. On a
        resumed deployment, a phase that `finished` proves done is logged as verified and
        skipped instead."""
        d = inp.deployment
        _valid(d)

        def run(beat: Beat) -> T:
            if d.round and finished is not None:
                done = finished()
                if done is not None:
                    records.add_log(
                        self.engine,
                        d.deployment_id,
                        phase,
                        f"Phase {phase.value} verified and skipped: finished before resume",
                        event_key=f"verified:{phase.value}:r{d.round}",
                    )
                    return done
            records.record_transition(
                self.engine, d.deployment_id, phase, inp.metadata, round=d.round
            )
            return work(beat)

        return await heartbeating(run)

    @activity.defn(name="pull_source")
    async def pull_source(self, inp: PhaseInput) -> SourceResult:
        """Unpack the upload into the work dir (see `source.pull` for why a retry is safe)."""
        d = inp.deployment
        return await self._phase(
            inp,
            Phase.PULLING_SOURCE,
            lambda beat: source.pull(self.layout, d.upload_id, d.deployment_id, beat),
            lambda: source.finished(self.layout, d.deployment_id),
        )

    @activity.defn(name="build")
    async def build(self, inp: PhaseInput) -> BuildResult:
        """Detect the site's type (see `detect.build` for why a retry is safe)."""
        work = self.layout.work(inp.deployment.deployment_id)
        return await self._phase(
            inp,
            Phase.BUILDING,
            lambda _: detect.build(work, work / source.SOURCE),
            lambda: detect.finished(work),
        )

    @activity.defn(name="copy_files")
    async def copy_files(self, inp: CopyInput) -> CopyResult:
        """Build the release dir (see `copying.copy_release` for how a retry resumes)."""
        d = inp.deployment
        work = self.layout.work(d.deployment_id)
        attempt = activity.info().attempt
        last_write = 0.0

        def progress(copied: int, total: int) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write < PROGRESS_EVERY and copied < total:
                return
            last_write = now
            records.record_progress(
                self.engine,
                d.deployment_id,
                Phase.COPYING_FILES,
                copy_progress(copied, total),
                {"filesCopied": copied, "totalFiles": total},
            )

        def copy(beat: Beat) -> CopyResult:
            if beat.details:
                records.add_log(
                    self.engine,
                    d.deployment_id,
                    Phase.COPYING_FILES,
                    f"Copying resumed at entry {beat.details['next']} on attempt {attempt}",
                    metadata=beat.details,
                    event_key=f"copy-resumed:{d.round}:{attempt}",
                )
            return copying.copy_release(
                self.layout,
                d.project,
                d.deployment_id,
                work / source.SOURCE,
                load(work / source.MANIFEST),
                inp.site_root,
                beat,
                progress,
            )

        return await self._phase(
            inp,
            Phase.COPYING_FILES,
            copy,
            lambda: copying.finished(self.layout, d.project, d.deployment_id),
        )

    @activity.defn(name="stage_release")
    async def stage_release(self, inp: PhaseInput) -> None:
        """Point the project's `next` link at the release (see `release.stage`)."""
        d = inp.deployment
        await self._phase(
            inp,
            Phase.CREATING_SYMLINKS,
            lambda _: release.stage(self.layout, d.project, d.release),
        )

    def _route(self, d: DeploymentInput, public: routes.Target | None) -> tuple[str, str]:
        """The route with the candidate on this release and `public` where it is now (on a
        first deployment: this release's slot, which serves nothing until active)."""
        port = self.settings.static_port
        return routes.render_route(
            d.project,
            self.settings.project_host(d.project),
            public or routes.static_target(port, "current"),
            routes.static_target(port, "next"),
            d.deployment_id,
        )

    @activity.defn(name="update_routes")
    async def update_routes(self, inp: PhaseInput) -> RouteResult:
        """Point the candidate router at the release, leaving the public router as it is
        (see `routes.write_route` for why a retry is safe)."""
        d = inp.deployment

        def write(_: Beat) -> RouteResult:
            config, version = self._route(d, routes.public_target(self.layout, d.project))
            return routes.write_route(self.layout, d.project, d.deployment_id, config, version)

        return await self._phase(inp, Phase.UPDATING_ROUTES, write)

    @activity.defn(name="health_check")
    async def health_check(self, inp: HealthInput) -> HealthResult:
        """Wait until Traefik serves the release as this deployment's candidate, through the
        new route; idempotent because it only reads."""
        d = inp.deployment
        return await self._phase(
            inp,
            Phase.HEALTH_CHECK,
            lambda beat: health.wait_until_served(
                self.settings.http_port,
                self.settings.project_host(d.project),
                d.release,
                inp.route_version,
                self.settings.health_timeout_seconds,
                beat,
                candidate=d.deployment_id,
            ),
        )

    @activity.defn(name="activate")
    async def activate(self, inp: PhaseInput) -> SwitchResult:
        """Move traffic to the proven release: the public router to its target, `current` to
        it (see `release.promote`); the public route must then serve it, and only then is
        the deployment recorded active. Idempotent: each step leaves alone what is already
        in place."""
        d = inp.deployment
        _valid(d)

        def promote(beat: Beat) -> SwitchResult:
            config, version = self._route(
                d, routes.static_target(self.settings.static_port, "current")
            )
            routes.write_route(self.layout, d.project, d.deployment_id, config, version)
            switched = release.promote(self.layout, d.project, d.release, d.deployment_id)
            health.wait_until_served(
                self.settings.http_port,
                self.settings.project_host(d.project),
                d.release,
                version,
                PUBLIC_CHECK_SECONDS,
                beat,
            )
            metadata = {
                **inp.metadata,
                "previousRelease": switched.previous_release,
                "routeVersion": version,
            }
            records.record_transition(
                self.engine, d.deployment_id, Phase.ACTIVE, metadata, round=d.round
            )
            return switched

        return await heartbeating(promote)

    @activity.defn(name="restore_previous")
    async def restore_previous(self, d: DeploymentInput) -> None:
        """Compensation: the route, then `current`, back as they were before this deployment.
        Idempotent: each step acts only on what the deployment recorded before changing it."""
        _valid(d)

        def put_back(_: Beat) -> None:
            routes.restore_route(self.layout, d.project, d.deployment_id)
            release.restore(self.layout, d.project, d.release, d.deployment_id)

        await heartbeating(put_back)

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [
            self.pull_source,
            self.build,
            self.copy_files,
            self.stage_release,
            self.update_routes,
            self.health_check,
            self.activate,
            self.restore_previous,
        ]
