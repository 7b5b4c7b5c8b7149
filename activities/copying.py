"""copying_files: a release built from hard links into a content-addressed store.

A file whose content is already in the store costs a link, not a copy, so a redeploy costs
what changed. Copying resumes from the index a previous attempt heartbeated.
"""

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

from activities.atomic import write_atomically
from activities.heartbeat import Beat
from activities.manifest import Entry
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import CopyResult

_RESULT = "copy.json"

Progress = Callable[[int, int], None]


def _under(entries: list[Entry], site_root: str) -> list[Entry]:
    if not site_root:
        return [e for e in entries if e.path != RELEASE_MARKER]
    prefix = site_root + "/"
    return [
        Entry(e.path[len(prefix) :], e.kind, e.digest, e.size, e.target)
        for e in entries
        if e.path.startswith(prefix) and e.path[len(prefix) :] != RELEASE_MARKER
    ]


def _create(dest: Path) -> int:
    """Open `dest` as a new file (a new inode), so rewriting never touches a stored object
    that an earlier attempt already linked there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(dest, flags, 0o644)
    except FileExistsError:
        dest.unlink()
        return os.open(dest, flags, 0o644)


def _copy_new(source: Path, dest: Path, size: int) -> None:
    """Copy `source` into a new file at `dest`, in the kernel."""
    out = _create(dest)
    try:
        with source.open("rb") as src:
            sent = 0
            while sent < size:
                step = os.sendfile(out, src.fileno(), sent, size - sent)
                if step == 0:
                    break
                sent += step
    finally:
        os.close(out)


def _link(obj: Path, dest: Path) -> None:
    """Hard-link `dest` to `obj`, replacing what a failed attempt left there."""
    try:
        os.link(obj, dest)
    except FileExistsError:
        if os.path.samefile(obj, dest):
            return
        dest.unlink()
        os.link(obj, dest)


def _place_file(layout: Layout, entry: Entry, source: Path, dest: Path) -> bool:
    """Put `entry` at `dest`: a link to the stored object if the store has it, else a copy
    that then joins the store. True if it was copied."""
    obj = layout.store / entry.digest[:2] / entry.digest[2:]
    try:
        _link(obj, dest)
        return False
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno != errno.EMLINK:
            raise
    _copy_new(source, dest, entry.size)
    _share(dest, obj)
    return True


def _share(dest: Path, obj: Path) -> None:
    """Offer a newly copied file to the store. The release is complete either way, so when
    linking fails (another deployment stored it first, too many links) the file stays
    unshared."""
    with contextlib.suppress(OSError):
        obj.parent.mkdir(parents=True, exist_ok=True)
        os.link(dest, obj)


def finished(layout: Layout, project: str, deployment_id: str) -> CopyResult | None:
    """The result of a completed copy, if the release it built is still on disk."""
    result_file = layout.work(deployment_id) / _RESULT
    marker = layout.release(project, deployment_id) / RELEASE_MARKER
    if result_file.exists() and marker.is_file():
        return CopyResult.model_validate_json(result_file.read_text())
    return None


def copy_release(
    layout: Layout,
    project: str,
    deployment_id: str,
    source: Path,
    entries: list[Entry],
    site_root: str,
    beat: Beat,
    progress: Progress,
) -> CopyResult:
    """Build `releases/<deployment id>` from the source's site root.

    Idempotent: every entry is placed by a rename over whatever was there, the index of the
    next entry is heartbeated so a retry resumes there, and the result file written last
    lets a retry adopt a finished release.
    """
    result_file = layout.work(deployment_id) / _RESULT
    adopted = finished(layout, project, deployment_id)
    if adopted is not None:
        return adopted
    release = layout.release(project, deployment_id)
    release.mkdir(parents=True, exist_ok=True)
    todo = _under(entries, site_root)
    files = [e for e in todo if e.kind == "file"]
    done = beat.details or {"next": 0, "copied": 0, "linked": 0}
    base = source / site_root if site_root else source
    for index in range(done["next"], len(todo)):
        beat.check()
        entry = todo[index]
        dest = release / entry.path
        if entry.kind == "dir":
            dest.mkdir(exist_ok=True)
        elif entry.kind == "link":
            dest.unlink(missing_ok=True)
            os.symlink(entry.target, dest)
        else:
            copied = _place_file(layout, entry, base / entry.path, dest)
            done["copied" if copied else "linked"] += 1
        done["next"] = index + 1
        beat.details = dict(done)
        progress(done["copied"] + done["linked"], len(files))
    marker = release / RELEASE_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(marker, deployment_id)
    result = CopyResult(
        files_copied=len(files),
        total_files=len(files),
        bytes=sum(e.size for e in files),
        linked=done["linked"],
    )
    write_atomically(result_file, result.model_dump_json())
    return result
