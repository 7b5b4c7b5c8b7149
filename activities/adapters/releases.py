"""Releases on disk and the slot links that pick them: `next` (the release being proven) and
`current` (the release serving), each moved by an atomic rename so it never disappears; and
for an app, the descriptor that says what image to run.

Traffic follows `current`; `next` only serves requests that name the deployment as their
candidate, so the previous release keeps serving until the new one is proven.
"""

import json
import os
import shutil
from pathlib import Path

from pydantic import BaseModel, Field

from activities.adapters.appconfig import CONFIG_FILE, AppConfig, load_app_config
from activities.adapters.files import point_link, write_atomically
from slipway.errors import BadInputError
from slipway.layout import RELEASE_MARKER, Layout

DESCRIPTOR = "container.json"
"""In a container release's directory: what to run it from."""

_PREVIOUS = "previous-release.json"


class ContainerRelease(BaseModel):
    """A container release: its image and the app's settings, enough to run it again (a
    rollback runs a kept release's image in a new container). The settings are the upload's
    slipway.toml, kept beside the descriptor and read again with it."""

    image: str
    image_id: str
    detected_type: str
    config: AppConfig = Field(default_factory=AppConfig, exclude=True)


def linked_release(link: Path) -> str | None:
    """The release id a link points to, or None when there is no link."""
    if not link.is_symlink():
        return None
    return link.readlink().name


def current_release(layout: Layout, project: str) -> str | None:
    """The release serving the project, or None before its first deployment."""
    return linked_release(layout.current(project))


def kept_releases(layout: Layout, project: str) -> list[str]:
    """Release ids still on disk, newest first."""
    releases = layout.releases(project)
    if not releases.is_dir():
        return []
    found = [p for p in releases.iterdir() if (p / RELEASE_MARKER).is_file()]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def point(layout: Layout, project: str, link: Path, release_id: str, scratch: str) -> None:
    """Point the slot `link` at the release. Idempotent: pointing a link where it already
    points changes nothing."""
    if linked_release(link) != release_id:
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(layout.release(project, release_id), link.parent)
        point_link(link, target, scratch)


def verify_release(layout: Layout, project: str, release_id: str) -> None:
    """Fail for good, naming what is kept, if the release is not complete on disk."""
    marker = layout.release(project, release_id) / RELEASE_MARKER
    if not marker.is_file() or marker.read_text() != release_id:
        kept = ", ".join(kept_releases(layout, project)) or "none"
        raise BadInputError(
            f"release {release_id} of {project} is gone or incomplete (cleaned up?); "
            f"kept releases: {kept}"
        )


def remember_previous(layout: Layout, project: str, deployment_id: str) -> str | None:
    """The release `current` points to before this deployment moves it, written to the work
    dir the first time and read back ever after, so a retry after the switch still knows."""
    record = layout.work(deployment_id) / _PREVIOUS
    if record.exists():
        previous: str | None = json.loads(record.read_text())["previous"]
        return previous
    previous = current_release(layout, project)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(record, json.dumps({"previous": previous}))
    return previous


def remembered_previous(layout: Layout, deployment_id: str) -> tuple[bool, str | None]:
    """Whether this deployment recorded the release before its switch, and which it was."""
    record = layout.work(deployment_id) / _PREVIOUS
    if not record.exists():
        return False, None
    previous: str | None = json.loads(record.read_text())["previous"]
    return True, previous


def write_container_release(
    layout: Layout, project: str, deployment_id: str, source: Path, release: ContainerRelease
) -> None:
    """Record an app's release: its slipway.toml, its descriptor, and the marker last, so a
    release with a marker is complete."""
    directory = layout.release(project, deployment_id)
    directory.mkdir(parents=True, exist_ok=True)
    if (source / CONFIG_FILE).is_file():
        write_atomically(directory / CONFIG_FILE, (source / CONFIG_FILE).read_text())
    write_atomically(directory / DESCRIPTOR, release.model_dump_json())
    marker = directory / RELEASE_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(marker, deployment_id)


def load_release(layout: Layout, project: str, release_id: str) -> ContainerRelease | None:
    """The release's descriptor, or None for a static release."""
    directory = layout.release(project, release_id)
    if not (directory / DESCRIPTOR).is_file():
        return None
    descriptor = ContainerRelease.model_validate_json((directory / DESCRIPTOR).read_text())
    descriptor.config = load_app_config(directory)
    return descriptor


def verified_release(layout: Layout, project: str, release_id: str) -> ContainerRelease | None:
    """The release's descriptor (None for a static release), once it is known complete."""
    verify_release(layout, project, release_id)
    return load_release(layout, project, release_id)


def move_old_links(layout: Layout) -> list[str]:
    """Homes made by earlier versions kept `current` and `next` inside each site: move them
    to the slots, since the static server no longer follows any link under `sites`. Returns
    the projects moved; idempotent (a moved link is not there any more)."""
    moved: list[str] = []
    for site in sorted(layout.sites.iterdir()) if layout.sites.is_dir() else []:
        for old, new in ((site / "current", layout.current), (site / "next", layout.candidate)):
            if not old.is_symlink():
                continue
            link = new(site.name)
            if not link.is_symlink():
                point(layout, site.name, link, old.readlink().name, f".{old.name}-moved")
            old.unlink()
            moved.append(site.name)
    return sorted(set(moved))


def kept_anywhere(layout: Layout, release_id: str) -> bool:
    """True if any project on this server keeps the release complete: a promoted preview's
    release is its project's as well as the preview's, and its image serves both."""
    sites = layout.sites
    return (
        bool(release_id)
        and sites.is_dir()
        and any(
            (site / "releases" / release_id / RELEASE_MARKER).is_file() for site in sites.iterdir()
        )
    )


def adopt_release(layout: Layout, source: str, project: str, release_id: str) -> bool:
    """Make `source`'s release one of `project`'s too: the same files, hard-linked (nothing
    is copied, a static release's files are links into the store already), built under a
    scratch name and renamed into place whole. True if it was adopted now. Idempotent: a
    release already complete in `project` is left alone, and a retry starts its scratch
    again."""
    target = layout.release(project, release_id)
    marker = target / RELEASE_MARKER
    if marker.is_file() and marker.read_text() == release_id:
        return False
    verify_release(layout, source, release_id)
    origin = layout.release(source, release_id)
    scratch = layout.releases(project) / f".adopt-{release_id}"
    shutil.rmtree(scratch, ignore_errors=True)
    for directory, _, files in os.walk(origin):
        inside = Path(directory).relative_to(origin)
        (scratch / inside).mkdir(parents=True, exist_ok=True)
        for name in files:
            found = Path(directory) / name
            if not found.is_symlink():
                os.link(found, scratch / inside / name)
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    return True
