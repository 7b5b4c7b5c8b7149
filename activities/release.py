"""creating_symlinks and the switch at active: links moved by an atomic rename, so neither
`next` (the release being proven) nor `current` (the release serving) ever disappears.

Traffic follows `current`; `next` only serves requests that name the deployment as their
candidate, so the previous release keeps serving until the new one is proven.
"""

import json
import os
from pathlib import Path

from activities.atomic import point_link, write_atomically
from activities.failures import bad_input
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import SwitchResult

_PREVIOUS = "previous-release.json"


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


def _point(layout: Layout, project: str, link: Path, release_id: str, scratch: str) -> None:
    if linked_release(link) != release_id:
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(layout.release(project, release_id), link.parent)
        point_link(link, target, scratch)


def verify_release(layout: Layout, project: str, release_id: str) -> None:
    """Fail for good, naming what is kept, if the release is not complete on disk."""
    marker = layout.release(project, release_id) / RELEASE_MARKER
    if not marker.is_file() or marker.read_text() != release_id:
        kept = ", ".join(kept_releases(layout, project)) or "none"
        bad_input(
            f"release {release_id} of {project} is gone or incomplete (cleaned up?); "
            f"kept releases: {kept}"
        )


def stage(layout: Layout, project: str, release_id: str) -> None:
    """Point `next` at the release. Idempotent: pointing a link where it already points
    changes nothing."""
    verify_release(layout, project, release_id)
    _point(layout, project, layout.candidate(project), release_id, f".next-{release_id}")


def promote(layout: Layout, project: str, release_id: str, deployment_id: str) -> SwitchResult:
    """Point `current` at the release: traffic moves now.

    Idempotent: the release `current` pointed to before is written to the work dir before
    the switch and read back by a retry, which finds the switch done and changes nothing.
    """
    verify_release(layout, project, release_id)
    record = layout.work(deployment_id) / _PREVIOUS
    if record.exists():
        previous = json.loads(record.read_text())["previous"]
    else:
        previous = current_release(layout, project)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(record, json.dumps({"previous": previous}))
    _point(layout, project, layout.current(project), release_id, f".current-{deployment_id}")
    return SwitchResult(previous_release=previous)


def restore(layout: Layout, project: str, release_id: str, deployment_id: str) -> None:
    """Put `current` back where it was before this deployment promoted its release.

    Idempotent: it acts only while `current` points at the deployment's release, and takes
    the previous release from the record written before the switch.
    """
    record = layout.work(deployment_id) / _PREVIOUS
    if current_release(layout, project) != release_id or not record.exists():
        return
    previous = json.loads(record.read_text())["previous"]
    if previous == release_id:
        return
    if previous and layout.release(project, previous).is_dir():
        _point(layout, project, layout.current(project), previous, f".current-{deployment_id}")
    else:
        layout.current(project).unlink()


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
                _point(layout, site.name, link, old.readlink().name, f".{old.name}-moved")
            old.unlink()
            moved.append(site.name)
    return sorted(set(moved))
