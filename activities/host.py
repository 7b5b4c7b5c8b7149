"""The host-bound phase activities: they act on this server's files and web servers, so they
run on its own task queue. Each records its phase's transition, then does the phase's work."""

import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from docker.errors import DockerException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import apps, copying, detect, health, probes, release, routes, source
from activities.containers import UnhealthyError, container_name, wait_healthy
from activities.failures import bad_input
from activities.heartbeat import Beat, heartbeating
from activities.manifest import load
from slipway import records
from slipway.layout import RELEASE_MARKER
from slipway.models import (
    BuildResult,
    CopyInput,
    CopyResult,
    DeploymentInput,
    HealthInput,
    HealthResult,
    PhaseInput,
    ProbeResult,
    RetireInput,
    RouteResult,
    SourceResult,
    SwitchResult,
)
from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name
from slipway.phases import Phase, copy_progress
from slipway.secrets import SecretError, load_key, unseal
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
        self.layout = settings.layout

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
            lambda beat: source.pull(
                self.layout, d.upload_id, d.deployment_id, self.settings.unpack_limits, beat
            ),
            lambda: source.finished(self.layout, d.deployment_id),
        )

    @activity.defn(name="build")
    async def build(self, inp: PhaseInput) -> BuildResult:
        """Detect the upload's type; for an app, build its image with the output streamed
        into the deployment's log (see `apps.build` for why a retry is safe)."""
        d = inp.deployment
        work = self.layout.work(d.deployment_id)
        attempt = activity.info().attempt

        def run(beat: Beat) -> BuildResult:
            found = detect.detect(work / source.SOURCE)
            if found.deployment_type == "container":
                found = self._build_image(d, found.detected_type, attempt, beat)
            return detect.record(work, found)

        return await self._phase(inp, Phase.BUILDING, run, lambda: detect.finished(work))

    def _build_image(
        self, d: DeploymentInput, detected_type: str, attempt: int, beat: Beat
    ) -> BuildResult:
        lines = 0

        def log(line: str) -> None:
            nonlocal lines
            lines += 1
            records.add_log(
                self.engine,
                d.deployment_id,
                Phase.BUILDING,
                line,
                event_key=f"build:{d.round}:{attempt}:{lines}",
            )

        client = apps.engine(self.settings.docker_host)
        try:
            built = apps.build(
                client,
                self.layout,
                d.project,
                d.deployment_id,
                self.layout.work(d.deployment_id) / source.SOURCE,
                detected_type,
                log,
                beat.check,
            )
        finally:
            client.close()
        if lines == 0:
            log(f"Image {built.image_id} adopted: built by an earlier attempt")
        return built

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
                self.settings.unpack_limits,
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

    def _container(self, d: DeploymentInput) -> apps.ContainerRelease | None:
        release.verify_release(self.layout, d.project, d.release)
        return apps.load_release(self.layout, d.project, d.release)

    def _route(
        self, d: DeploymentInput, public: routes.Target | None, candidate: routes.Target
    ) -> tuple[str, str]:
        return routes.render_route(
            d.project, self.settings.project_host(d.project), public, candidate, d.deployment_id
        )

    def _static(self, slot: str) -> routes.Target:
        return routes.static_target(self.settings.static_address, self.settings.static_port, slot)

    def _app(self, d: DeploymentInput, port: int) -> routes.Target:
        """Where Traefik reaches a deployment's container: a loopback port on host
        networking, else the container's name on the network they share."""
        if self.settings.container_network == "host":
            return routes.Target(url=f"http://127.0.0.1:{port}")
        return routes.Target(url=f"http://{container_name(d.project, d.deployment_id)}:{port}")

    @activity.defn(name="update_routes")
    async def update_routes(self, inp: PhaseInput) -> RouteResult:
        """Point the candidate router at the release (for an app: at its own container,
        started now on its own port), leaving the public router as it is. Idempotent: the
        container is adopted by name, and see `routes.write_route`."""
        d = inp.deployment

        def run(_: Beat) -> RouteResult:
            public = routes.public_target(self.layout, d.project)
            container = self._container(d)
            if container is None:
                config, version = self._route(d, public, self._static("next"))
                return routes.write_route(self.layout, d.project, d.deployment_id, config, version)
            container_id, port = self._start(d, container)
            config, version = self._route(d, public, self._app(d, port))
            routed = routes.write_route(self.layout, d.project, d.deployment_id, config, version)
            return routed.model_copy(update={"container_id": container_id, "port": port})

        return await self._phase(inp, Phase.UPDATING_ROUTES, run)

    def _start(self, d: DeploymentInput, container: apps.ContainerRelease) -> tuple[str, int]:
        try:
            env = unseal(d.env, load_key(self.settings))
        except SecretError as err:
            bad_input(str(err))
        client = apps.engine(self.settings.docker_host)
        try:
            return apps.start(
                client,
                self.layout,
                d.project,
                d.deployment_id,
                container,
                env,
                self.settings.container_network,
            )
        finally:
            client.close()

    @activity.defn(name="health_check")
    async def health_check(self, inp: HealthInput) -> HealthResult:
        """Wait until the release answers as this deployment's candidate through Traefik and
        the new route (an app's container must first be healthy in Docker's eyes);
        idempotent because it only reads."""
        d = inp.deployment

        def run(beat: Beat) -> HealthResult:
            deadline = time.monotonic() + self.settings.health_timeout_seconds
            container = self._container(d)
            if container is not None:
                client = apps.engine(self.settings.docker_host)
                try:
                    wait_healthy(
                        client,
                        container_name(d.project, d.deployment_id),
                        self.settings.health_timeout_seconds,
                        beat.check,
                    )
                except UnhealthyError as err:
                    raise ApplicationError(str(err), type="Unhealthy", non_retryable=True) from None
                finally:
                    client.close()
            return self._served(d, container, inp.route_version, deadline, beat, candidate=True)

        return await self._phase(inp, Phase.HEALTH_CHECK, run)

    def _served(
        self,
        d: DeploymentInput,
        container: apps.ContainerRelease | None,
        route_version: str,
        deadline: float,
        beat: Beat,
        *,
        candidate: bool,
    ) -> HealthResult:
        """The release answers through Traefik: a static one with its own marker, an app on
        its health path."""
        return health.wait_until_served(
            self.settings.proxy_url,
            self.settings.project_host(d.project),
            container.config.health.path if container else f"/{RELEASE_MARKER}",
            route_version,
            max(0.0, deadline - time.monotonic()),
            beat,
            body=None if container else d.release,
            candidate=d.deployment_id if candidate else None,
        )

    @activity.defn(name="activate")
    async def activate(self, inp: PhaseInput) -> SwitchResult:
        """Move traffic to the proven release: the public router to its target, and for a
        static site `current` to it (see `release.promote`). The public route must then serve
        it, and only then is the deployment recorded active; an app's previous container is
        removed last. Idempotent: each step leaves alone what is already in place."""
        d = inp.deployment
        _valid(d)

        def promote(beat: Beat) -> SwitchResult:
            container = self._container(d)
            before = routes.public_target(self.layout, d.project)
            if container is None:
                public = self._static("current")
                candidate = self._static("next")
            else:
                port = apps.port_of(routes.candidate_target(self.layout, d.project).url)
                public = candidate = self._app(d, port or 0)
            config, version = self._route(d, public, candidate)
            routes.write_route(self.layout, d.project, d.deployment_id, config, version)
            switched = release.promote(self.layout, d.project, d.release, d.deployment_id)
            deadline = time.monotonic() + PUBLIC_CHECK_SECONDS
            self._served(d, container, version, deadline, beat, candidate=False)
            metadata = {
                **inp.metadata,
                "previousRelease": switched.previous_release,
                "routeVersion": version,
            }
            records.record_transition(
                self.engine, d.deployment_id, Phase.ACTIVE, metadata, round=d.round
            )
            if before is not None and before.url != public.url and not before.slot:
                switched.previous_url = before.url
            return switched

        return await heartbeating(promote)

    @activity.defn(name="probe_release")
    async def probe_release(self, inp: PhaseInput) -> ProbeResult:
        """Look once at the release serving the project (see `probes.probe`); it only reads."""
        d = inp.deployment
        _valid(d)
        return await heartbeating(lambda _: probes.probe(self.settings, self.layout, d.project)[0])

    @activity.defn(name="retire_previous")
    async def retire_previous(self, inp: RetireInput) -> str | None:
        """Remove the container that served before the switch, once the new release has
        baked. A failure is logged, not raised: the deployment is active, and the reconciler
        removes leftovers. Idempotent: removing a gone container is a no-op."""
        d = inp.deployment
        _valid(d)
        return await heartbeating(lambda _: self._retire(d, inp.url))

    def _retire(self, d: DeploymentInput, url: str) -> str | None:
        port = apps.port_of(url)
        if port is None:
            return None
        client = apps.engine(self.settings.docker_host)
        try:
            removed = apps.remove_serving_on(client, self.layout, d.project, port)
            if removed:
                records.add_log(
                    self.engine,
                    d.deployment_id,
                    Phase.ACTIVE,
                    f"Previous container {removed} removed after the switch",
                    event_key=f"retired:{d.round}",
                )
            return removed
        except DockerException as err:
            records.add_log(
                self.engine,
                d.deployment_id,
                Phase.ACTIVE,
                f"The previous container on port {port} was not removed: {err}",
                level="warning",
            )
            return None
        finally:
            client.close()

    @activity.defn(name="restore_previous")
    async def restore_previous(self, d: DeploymentInput) -> None:
        """Compensation: the route, then `current`, back as they were before this deployment,
        then, once Traefik serves the restored route, its own container (if any) removed.
        Idempotent: each step acts only on what the deployment recorded before changing it,
        and removing a gone container is a no-op."""
        _valid(d)

        def put_back(beat: Beat) -> None:
            routes.restore_route(self.layout, d.project, d.deployment_id)
            release.restore(self.layout, d.project, d.release, d.deployment_id)
            if apps.load_release(self.layout, d.project, d.release) is not None:
                restored = routes.version_of(self.layout, d.project)
                if restored is not None:
                    health.wait_for_route(
                        self.settings.proxy_url,
                        self.settings.project_host(d.project),
                        restored,
                        PUBLIC_CHECK_SECONDS,
                        beat,
                    )
                client = apps.engine(self.settings.docker_host)
                try:
                    apps.remove_own(client, d.project, d.deployment_id)
                finally:
                    client.close()

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
            self.probe_release,
            self.retire_previous,
            self.restore_previous,
        ]
