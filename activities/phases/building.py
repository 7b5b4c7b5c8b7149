"""building: what kind of upload this is; for an app, its image built on the Docker Engine
(missing base images pulled first, the output streamed line by line, progress rising step by
step); for a static site, where its root is; for a static site its Dockerfile builds
(`[static] from_image`), the image built and the files at that path copied out of it to be
released like an upload's."""

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from activities.adapters.appconfig import AppConfig, AppConfigError, load_app_config
from activities.adapters.archive import UnsafeArchiveError
from activities.adapters.beat import Beat
from activities.adapters.build_network import build_network
from activities.adapters.docker import LABEL_HOME, docker_client, image_tag, labels_for
from activities.adapters.exports import export_directory
from activities.adapters.files import write_atomically
from activities.adapters.images import BuildError, build_image, find_image, remove_image
from activities.adapters.manifest import save, scan
from activities.adapters.pulls import base_images, pull_missing
from activities.adapters.releases import ContainerRelease, write_container_release
from slipway.errors import BadInputError
from slipway.layout import Layout
from slipway.metadata import PhaseMetadata
from slipway.models import BuildResult
from slipway.phases import PROGRESS, DeploymentType, Phase
from slipway.secrets import load_key, unseal
from slipway.settings import RegistryAuth, Settings, registry_auth
from slipway.static_rules import DEFAULT_RULES

STATIC_ROOTS = ("", "public", "dist", "build", "out")
"""Where a static site's index.html may be, in the order they are tried."""

PROGRESS_EVERY = 1.0
"""Seconds between progress reports while the build's steps go by."""

CONTEXT = "context"
"""In the work dir: the upload a static site's image was built from, once the files copied
out of the image have taken its place as the source that copying_files releases."""

_RESULT = "build.json"


@dataclass(frozen=True)
class Job:
    """One deployment's build: this server's settings, whose it is, and the project's registry
    credentials, still sealed."""

    settings: Settings
    project: str
    deployment_id: str
    sealed_registry_auth: str | None = None

    @property
    def tag(self) -> str:
        """The deployment's image."""
        return image_tag(self.project, self.deployment_id)

    @property
    def labels(self) -> dict[str, str]:
        """The labels of what the build makes: the deployment's, and this home's."""
        labels = labels_for(self.project, self.deployment_id)
        return {**labels, LABEL_HOME: self.settings.layout.identity}


def finished(layout: Layout, deployment_id: str) -> BuildResult | None:
    """The result of a completed build, if any."""
    result = layout.work(deployment_id) / _RESULT
    return BuildResult.model_validate_json(result.read_text()) if result.exists() else None


def detect(source: Path) -> BuildResult:
    """A Dockerfile at the root makes a container; else an index.html makes a static site;
    an upload that is neither fails with a reason."""
    if (source / "Dockerfile").is_file():
        return BuildResult(detected_type="dockerfile", deployment_type=DeploymentType.CONTAINER)
    for root in STATIC_ROOTS:
        if (source / root / "index.html").is_file():
            return BuildResult(
                detected_type="static", deployment_type=DeploymentType.STATIC, site_root=root
            )
    raise BadInputError(
        "unsupported upload: no Dockerfile at its root and no index.html at its root or in "
        "public/, dist/, build/ or out/ (add a Dockerfile for an app, an index.html for a site)"
    )


def build_progress(step: int, steps: int) -> int:
    """Progress as step `step` of `steps` begins: from building's start up to just below the
    next phase's."""
    start = PROGRESS[Phase.BUILDING]
    span = PROGRESS[Phase.COPYING_FILES] - start - 1
    return start + (span * min(max(step - 1, 0), steps)) // max(steps, 1)


Progress = Callable[[int, PhaseMetadata], None]
"""Hears the progress within the phase, and metadata to merge with it."""


class _Steps:
    """Turns the build's steps into progress reports, at most one every PROGRESS_EVERY. A
    step that comes sooner is reported from `check`, which the build calls while the engine
    is silent too: a long RUN step shows where the build is within a second."""

    def __init__(self, report: Progress, check: Callable[[], None]) -> None:
        self.report = report
        self.cancelled = check
        self.pending: int | None = None
        self.last = float("-inf")

    def step(self, step: int, steps: int) -> None:
        self.pending = build_progress(step, steps)
        self.flush()

    def check(self) -> None:
        self.cancelled()
        self.flush()

    def flush(self) -> None:
        now = time.monotonic()
        if self.pending is not None and now - self.last >= PROGRESS_EVERY:
            self.report(self.pending, PhaseMetadata())
            self.pending, self.last = None, now


def build(
    job: Job, on_line: Callable[[str], None], on_progress: Progress, beat: Beat
) -> BuildResult:
    """Detect the upload's type and, for a Dockerfile, build its image: for an app, record its
    release; for `[static] from_image`, copy the built files out as the source to release.
    `on_progress` hears the progress within the phase, at most once a second.

    Idempotent: the image tag derives from the deployment id and an existing image with it is
    adopted, not rebuilt; the release is written atomically, marker last; a static site's
    rules are written (or removed) whole, from the same slipway.toml; the exported files
    replace the source in one rename, the upload kept aside as the context of a retry; the
    result file written last lets a resumed deployment skip the phase.
    """
    layout = job.settings.layout
    context = layout.work(job.deployment_id) / CONTEXT
    source = context if context.is_dir() else layout.source(job.deployment_id)
    found = detect(source)
    if found.deployment_type is DeploymentType.CONTAINER:
        found = _dockerfile(job, source, on_line, _Steps(on_progress, beat.check), beat)
    else:
        _keep_rules(layout, job.deployment_id, _config(source))
    write_atomically(layout.work(job.deployment_id) / _RESULT, found.model_dump_json())
    return found


def _config(source: Path) -> AppConfig:
    """The upload's slipway.toml; a bad one fails the deployment, naming the setting."""
    try:
        return load_app_config(source)
    except AppConfigError as err:
        raise BadInputError(str(err)) from None


def _keep_rules(layout: Layout, deployment_id: str, config: AppConfig) -> None:
    """Keep a static site's `[static]` rules for copying_files to put in its release; with
    the defaults, nothing (the static server serves a release without rules by them)."""
    rules = config.static.rules if config.static is not None else DEFAULT_RULES
    kept = layout.static_rules(deployment_id)
    if rules == DEFAULT_RULES:
        kept.unlink(missing_ok=True)
    else:
        write_atomically(kept, rules.serialized())


def _dockerfile(
    job: Job, source: Path, on_line: Callable[[str], None], steps: _Steps, beat: Beat
) -> BuildResult:
    config = _config(source)
    if config.static is not None and config.static.from_image is None:
        raise BadInputError(
            "slipway.toml: static.from_image is missing: an upload with a Dockerfile and a "
            "[static] section is a site built by the image; name the directory of its built "
            'files, e.g. from_image = "/app/dist" (or remove [static] to run the app)'
        )
    with docker_client(job.settings.docker_host) as client:
        network = build_network(client, job.settings, config.build.network)
        try:
            image_id = _image(client, job, source, config, network, on_line, steps)
        except BuildError as err:
            hint = ""
            if network == "none" and "returned a non-zero code" in str(err):
                hint = ' (its RUN steps had no network: [build] network = "none")'
            raise BadInputError(f"the image did not build: {err}{hint}") from None
        if config.static is not None and config.static.from_image is not None:
            _export(client, job, config.static.from_image, beat)
            _keep_rules(job.settings.layout, job.deployment_id, config)
            return BuildResult(
                detected_type="dockerfile-static",
                deployment_type=DeploymentType.STATIC,
                image_id=image_id,
            )
    release = ContainerRelease(image=job.tag, image_id=image_id, detected_type="dockerfile")
    write_container_release(job.settings.layout, job.project, job.deployment_id, source, release)
    return BuildResult(
        detected_type="dockerfile", deployment_type=DeploymentType.CONTAINER, image_id=image_id
    )


def _image(
    client: docker.DockerClient,
    job: Job,
    source: Path,
    config: AppConfig,
    network: str,
    on_line: Callable[[str], None],
    steps: _Steps,
) -> str:
    """The deployment's image: adopted if an earlier attempt built it, else built from
    `source` after its missing base images are pulled."""
    adopted = find_image(client, job.tag)
    if adopted:
        on_line(f"Image {adopted} adopted: built by an earlier attempt")
        return adopted
    dockerfile = (source / "Dockerfile").read_text(errors="replace")
    images = base_images(dockerfile, config.build.args)
    pull_missing(client, images, _logins(job), on_line, steps.check)
    on_line(f"Building with network {network}")
    return build_image(
        client,
        source,
        job.tag,
        on_line,
        steps.check,
        labels=job.labels,
        network_mode=network,
        args=config.build.args,
        target=config.build.target,
        on_step=steps.step,
    )


def _logins(job: Job) -> list[RegistryAuth]:
    """Registry credentials: the project's own first, then the server's."""
    logins = [job.settings.registry_logins]
    if job.sealed_registry_auth:
        try:
            opened = unseal({"auth": job.sealed_registry_auth}, load_key(job.settings))["auth"]
            logins.insert(0, registry_auth(opened, "the project's registry credentials"))
        except ValueError as err:
            raise BadInputError(str(err)) from None
    return logins


def _export(client: docker.DockerClient, job: Job, path: str, beat: Beat) -> None:
    """Copy the image's files at `path` out, through the unpacking every upload goes through,
    and make them the source: the upload moves aside as the context, the manifest is
    rewritten. Files the unpacking refuses fail the deployment, and their image goes."""
    layout = job.settings.layout
    work = layout.work(job.deployment_id)
    partial = work / "export.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    limits = job.settings.unpack_limits
    try:
        export_directory(client, job.tag, path, partial, limits, beat.check, job.labels)
    except (BuildError, UnsafeArchiveError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        remove_image(client, job.tag)
        raise BadInputError(f"the files built at {path} were refused: {err}") from None
    source, context = layout.source(job.deployment_id), work / CONTEXT
    if context.is_dir():
        shutil.rmtree(source, ignore_errors=True)
    else:
        source.rename(context)
    partial.rename(source)
    save(scan(source, beat), layout.manifest(job.deployment_id))
