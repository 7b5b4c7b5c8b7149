"""What a server may delete: release dirs, work dirs, routes, uploads and stored objects that
belong to no active or in-progress deployment, always keeping each project's current release
and its newest kept releases for rollback."""

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import docker

from activities.adapters.blobs import BLOBS, SCRATCH
from activities.adapters.containers import remove_container
from activities.adapters.content_manifest import HEAD, digests
from activities.adapters.docker import LABEL_DEPLOYMENT, LABEL_PORT, LABEL_PROJECT, ours, port_of
from activities.adapters.images import remove_image
from activities.adapters.releases import current_release, kept_anywhere
from activities.adapters.traefik import public_target, remove_route
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import CleanupReport, DeploymentView, ReconcileInput
from slipway.phases import WAITING, Status

log = logging.getLogger(__name__)


def releases_to_keep(history: list[DeploymentView], current: str | None, keep: int) -> set[str]:
    """The current release, those of deployments still under way, and the newest `keep`
    releases that went active."""
    kept = {v.release for v in history if v.status in WAITING}
    if current:
        kept.add(current)
    went_active = sorted(
        (v for v in history if v.status is Status.ACTIVE),
        key=lambda v: v.phase_updated_at,
        reverse=True,
    )
    newest: list[str] = []
    for view in went_active:
        release = view.release
        if release not in newest:
            newest.append(release)
    return kept | set(newest[:keep])


def _old(path: Path, seconds: float) -> bool:
    return time.time() - path.stat().st_mtime > seconds


@dataclass(frozen=True)
class Records:
    """What the database knows that a cleanup needs, each looked up in one query: the
    histories of the projects looked at, the deployments of the work dirs, and every
    deployment still queued or under way."""

    histories: Callable[[Collection[str]], dict[str, list[DeploymentView]]]
    deployments: Callable[[Collection[str]], dict[str, DeploymentView]]
    waiting: list[DeploymentView]


def clean(
    layout: Layout,
    inp: ReconcileInput,
    records: Records,
    check: Callable[[], None],
    projects: Collection[str] | None = None,
    *,
    collect: bool = True,
) -> CleanupReport:
    """Remove what nothing needs any more: the releases and routes of `projects` (every
    project on this server when None), then old work dirs and uploads, and with `collect`,
    or once a release went, the stored objects no release links to. `check` is called
    between items so a cancelled cleanup stops. Idempotent: it only deletes, and deleting
    what is gone is a no-op."""
    report = CleanupReport(locked=True)
    sites = sorted(site.name for site in layout.sites.iterdir()) if layout.sites.is_dir() else []
    looked_at = sites if projects is None else sorted(set(projects) & set(sites))
    report.looked_at = looked_at
    histories = records.histories(looked_at)
    for project in looked_at:
        history = histories.get(project, [])
        current = current_release(layout, project)
        keep = releases_to_keep(history, current, inp.keep_releases)
        releases = layout.releases(project)
        for release in sorted(releases.iterdir()) if releases.is_dir() else []:
            check()
            if release.name not in keep:
                shutil.rmtree(release, ignore_errors=True)
                report.releases.append(f"{project}/{release.name}")
        waiting = any(v.status in WAITING for v in history)
        if current is None and not waiting and remove_route(layout, project):
            report.routes.append(project)
    work_root = layout.home / "work"
    # Only a work dir past its retention can go: the others' deployments are not looked up.
    works = [
        work
        for work in (sorted(work_root.iterdir()) if work_root.is_dir() else [])
        if _old(work, inp.work_retention_seconds)
    ]
    recorded = records.deployments([work.name for work in works])
    for work in works:
        check()
        view = recorded.get(work.name)
        if view is None or view.status not in WAITING:
            shutil.rmtree(work, ignore_errors=True)
            report.work_dirs.append(work.name)
    in_progress_uploads = {v.details.upload_id or "" for v in records.waiting}
    for upload in sorted(layout.uploads.iterdir()) if layout.uploads.is_dir() else []:
        check()
        if upload.name == BLOBS:
            continue
        if upload.name not in in_progress_uploads and _old(upload, inp.upload_retention_seconds):
            if upload.is_dir():
                shutil.rmtree(upload, ignore_errors=True)
            else:
                upload.unlink(missing_ok=True)
            report.uploads.append(upload.name)
    if collect or report.releases:
        report.store_objects = collect_store(layout, check)
    report.blobs = _collect_blobs(layout.uploads, inp.upload_retention_seconds, check)
    log.info(
        "cleanup looked at %d of %d projects; removed %d releases, %d work dirs, %d routes, "
        "%d uploads, %d stored objects, %d blobs",
        len(looked_at),
        len(sites),
        len(report.releases),
        len(report.work_dirs),
        len(report.routes),
        len(report.uploads),
        report.store_objects,
        report.blobs,
    )
    return report


SCRATCH_SECONDS = 3600.0
"""A blob arriving writes a scratch file for as long as its request lasts: one is only
removed once it is this old as well as past the retention."""


def _untouched(path: Path, seconds: float) -> bool:
    """True if `path` is there and nothing wrote or touched it for `seconds`."""
    with contextlib.suppress(FileNotFoundError):
        return _old(path, seconds)
    return False


def _referenced(uploads: Path, check: Callable[[], None]) -> set[str]:
    """Every content the kept manifests in the upload store refer to."""
    found: set[str] = set()
    for upload in uploads.iterdir():
        check()
        if not upload.is_file():
            continue
        with contextlib.suppress(FileNotFoundError), upload.open("rb") as handle:
            if handle.read(len(HEAD)) == HEAD:
                found |= digests(HEAD + handle.read())
    return found


def _collect_blobs(uploads: Path, retention: float, check: Callable[[], None]) -> int:
    """Delete blobs that no kept manifest refers to and that nothing touched for the upload
    retention (storing a manifest touches the blobs it finds, before the manifest is there);
    manifests are only read when some blob is old enough to go. The age is looked at again
    right before each deletion."""
    store = uploads / BLOBS
    if not store.is_dir():
        return 0
    old: list[Path] = []
    for fan in sorted(store.iterdir()):
        check()
        if fan.name == SCRATCH:
            wait = max(retention, SCRATCH_SECONDS)
            for scratch in fan.iterdir():
                if _untouched(scratch, wait):
                    scratch.unlink(missing_ok=True)
        elif fan.is_dir():
            old += [blob for blob in fan.iterdir() if _untouched(blob, retention)]
    if not old:
        return 0
    kept = _referenced(uploads, check)
    removed = 0
    for blob in old:
        if blob.parent.name + blob.name not in kept and _untouched(blob, retention):
            blob.unlink(missing_ok=True)
            removed += 1
    return removed


def collect_store(layout: Layout, check: Callable[[], None]) -> int:
    """Delete stored objects no release links to (link count 1). A copy racing with this
    loses nothing: its release holds its own link to the content."""
    removed = 0
    if not layout.store.is_dir():
        return 0
    for fan in layout.store.iterdir():
        if fan.name == "tmp" or not fan.is_dir():
            continue
        check()
        for obj in fan.iterdir():
            if obj.stat().st_nlink == 1:
                obj.unlink(missing_ok=True)
                removed += 1
    return removed


def sweep(
    client: docker.DockerClient, layout: Layout, waiting: set[str], check: Callable[[], None]
) -> tuple[list[str], list[str]]:
    """Remove this home's containers that neither serve their project's public route nor
    belong to a deployment under way, and images whose release is no longer kept by any
    project (an app's, or a static site's built from a Dockerfile, kept as its project's
    build cache; a promoted preview's release is kept by its project too); returns
    the names and tags removed. Idempotent: it only removes."""
    containers: list[str] = []
    for container in client.containers.list(all=True, filters=ours(layout, LABEL_PROJECT)):
        check()
        labels = container.labels
        public = public_target(layout, labels[LABEL_PROJECT])
        serving = public is not None and port_of(public.url) == int(labels.get(LABEL_PORT, 0))
        if not serving and labels.get(LABEL_DEPLOYMENT) not in waiting:
            remove_container(client, container.name)
            containers.append(str(container.name))
    images: list[str] = []
    for image in client.images.list(filters=ours(layout, LABEL_PROJECT)):
        check()
        project, deployment = image.labels[LABEL_PROJECT], image.labels.get(LABEL_DEPLOYMENT, "")
        kept = (layout.release(project, deployment) / RELEASE_MARKER).is_file()
        if deployment in waiting or kept or kept_anywhere(layout, deployment):
            continue
        for tag in image.tags:
            remove_image(client, tag)
            images.append(tag)
    return containers, images
