"""The host-bound work phases, pulling_source to health_check: they act on this server's
files, web servers and Docker Engine, so they run on its own task queue. Each records its
phase's transition, then calls its phase module under `activities/phases/`, all while
heartbeating. The switch and what follows it are in `traffic`."""

import itertools
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import sqlalchemy as sa
from temporalio import activity

from activities.adapters.beat import Beat
from activities.adapters.git import Repository
from activities.adapters.manifest import load
from activities.failures import check_names
from activities.heartbeat import heartbeating
from activities.phases import (
    building,
    copying_files,
    creating_symlinks,
    health_check,
    pulling_source,
    updating_routes,
)
from slipway import records
from slipway.env_versions import deployment_env
from slipway.environment import EnvError
from slipway.errors import BadInputError
from slipway.git_remote import Credentials
from slipway.metadata import PhaseMetadata
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
)
from slipway.phases import Phase, copy_progress
from slipway.project_sources import source_of
from slipway.secrets import SecretError, load_key, unseal
from slipway.settings import Settings

T = TypeVar("T")

PROGRESS_EVERY = 1.0
"""Seconds between progress writes to the deployment row while files copy."""


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
        check_names(d)

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
        """pulling_source, from an upload or a git repository (see `pulling_source` for why
        a retry is safe). A repository's credentials are the project's (a preview's: those
        of the project it previews, whose mirror it shares), unsealed here."""
        d = inp.deployment
        limits = self.settings.unpack_limits

        def run(beat: Beat) -> SourceResult:
            if d.git is None:
                return pulling_source.pull(self.layout, d.upload_id, d.deployment_id, limits, beat)
            repo = Repository(
                mirror=self.layout.mirror(d.owner),
                url=d.git.url,
                credentials=self._credentials(d.owner),
                private=self.layout.git_home(d.owner),
                ca_file=self.settings.git_ca_file,
                max_bytes=self.settings.git_max_bytes,
            )
            return pulling_source.pull_git(self.layout, d.deployment_id, d.git, repo, limits, beat)

        return await self._phase(
            inp,
            Phase.PULLING_SOURCE,
            run,
            lambda: pulling_source.finished(self.layout, d.deployment_id),
        )

    def _credentials(self, project: str) -> Credentials:
        """What opens the project's repository, from its sealed settings."""
        source = source_of(self.engine, project)
        pairs = (("token", source.sealed_token), ("key", source.sealed_ssh_key))
        sealed = {name: value for name, value in pairs if value}
        try:
            opened = unseal(sealed, load_key(self.settings))
        except SecretError as err:
            raise BadInputError(str(err)) from None
        return Credentials(
            token=opened.get("token"),
            user=source.git_user or Credentials.user,
            ssh_key=opened.get("key"),
        )

    @activity.defn(name="build")
    async def build(self, inp: PhaseInput) -> BuildResult:
        """building, with an image's build output streamed into the deployment's log and
        its progress written as its steps go (see `building.build` for why a retry is safe)."""
        d = inp.deployment
        attempt = activity.info().attempt

        def run(beat: Beat) -> BuildResult:
            lines = itertools.count(1)

            def log(line: str) -> None:
                key = f"build:{d.round}:{attempt}:{next(lines)}"
                records.add_log(self.engine, d.deployment_id, Phase.BUILDING, line, event_key=key)

            report = partial(records.record_progress, self.engine, d.deployment_id, Phase.BUILDING)
            sealed = source_of(self.engine, d.owner).sealed_registry_auth
            job = building.Job(self.settings, d.project, d.deployment_id, sealed)
            return building.build(job, log, report, beat)

        return await self._phase(
            inp, Phase.BUILDING, run, lambda: building.finished(self.layout, d.deployment_id)
        )

    @activity.defn(name="copy_files")
    async def copy_files(self, inp: CopyInput) -> CopyResult:
        """copying_files, its progress written to the row at most every second (see
        `copying_files.copy_release` for how a retry resumes)."""
        d = inp.deployment
        attempt = activity.info().attempt
        last_write = time.monotonic()

        def progress(copied: int, total: int) -> None:
            nonlocal last_write
            now = time.monotonic()
            if now - last_write < PROGRESS_EVERY:
                # The end needs no write of its own: the next transition records the counts.
                return
            last_write = now
            records.record_progress(
                self.engine,
                d.deployment_id,
                Phase.COPYING_FILES,
                copy_progress(copied, total),
                PhaseMetadata(files_copied=copied, total_files=total),
            )

        def copy(beat: Beat) -> CopyResult:
            resumed = copying_files.resume_point(self.layout, d.deployment_id, beat)
            if resumed["next"]:
                records.add_log(
                    self.engine,
                    d.deployment_id,
                    Phase.COPYING_FILES,
                    f"Copying resumed at entry {resumed['next']} on attempt {attempt}",
                    metadata=dict(resumed),
                    event_key=f"copy-resumed:{d.round}:{attempt}",
                )
            return copying_files.copy_release(
                self.layout,
                d.project,
                d.deployment_id,
                self.layout.source(d.deployment_id),
                load(self.layout.manifest(d.deployment_id)),
                inp.site_root,
                beat,
                progress,
                self.settings.unpack_limits,
            )

        return await self._phase(
            inp,
            Phase.COPYING_FILES,
            copy,
            lambda: copying_files.finished(self.layout, d.project, d.deployment_id),
        )

    @activity.defn(name="adopt_release")
    async def adopt_release(self, inp: PhaseInput) -> None:
        """copying_files of a promotion: the preview's release made the project's own (see
        `copying_files.adopt`); idempotent, a release already adopted is left alone."""
        d = inp.deployment
        await self._phase(
            inp,
            Phase.COPYING_FILES,
            lambda _: copying_files.adopt(self.layout, d.release_from, d.project, d.release),
        )

    @activity.defn(name="stage_release")
    async def stage_release(self, inp: PhaseInput) -> None:
        """creating_symlinks (see `creating_symlinks.stage`)."""
        d = inp.deployment
        await self._phase(
            inp,
            Phase.CREATING_SYMLINKS,
            lambda _: creating_symlinks.stage(self.settings, d.project, d.release),
        )

    def _env(self, d: DeploymentInput) -> dict[str, str]:
        """The deployment's environment, unsealed here and handed only to its container:
        its project's version, then its own overrides (see `env_versions.deployment_env`)."""
        try:
            key = load_key(self.settings)
            return deployment_env(
                self.engine, key, d.preview_of or d.project, d.env_version, d.deployment_id, d.env
            )
        except (SecretError, EnvError) as err:
            raise BadInputError(str(err)) from None

    def _secrets(self, d: DeploymentInput) -> list[str]:
        """The environment's values, to mask in what the app printed (none if unreadable)."""
        try:
            return list(self._env(d).values())
        except BadInputError:
            return []

    @activity.defn(name="update_routes")
    async def update_routes(self, inp: PhaseInput) -> RouteResult:
        """updating_routes (see `updating_routes.update_routes`), with the environment read
        from the database now: its values never travel through Temporal."""
        d = inp.deployment
        return await self._phase(
            inp,
            Phase.UPDATING_ROUTES,
            lambda _: updating_routes.update_routes(self.settings, d, self._env(d)),
        )

    @activity.defn(name="health_check")
    async def health_check(self, inp: HealthInput) -> HealthResult:
        """health_check (see `health_check.check`); idempotent because it only reads."""
        d = inp.deployment
        return await self._phase(
            inp,
            Phase.HEALTH_CHECK,
            lambda beat: health_check.check(
                self.settings, d, inp.route_version, beat, lambda: self._secrets(d)
            ),
        )

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [
            self.pull_source,
            self.build,
            self.copy_files,
            self.adopt_release,
            self.stage_release,
            self.update_routes,
            self.health_check,
        ]
