"""copying_files: a release built from hard links into a content-addressed store.

A file whose content is already in the store costs a link, not a copy, so a redeploy costs
what changed. Copying resumes from the index a previous attempt heartbeated.
"""

import errno
import os
import shutil
import uuid
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


def _store_object(layout: Layout, entry: Entry, source: Path) -> tuple[Path, bool]:
    """The store's copy of `entry`'s content, added from `source` if missing; True if added."""
    obj = layout.store / entry.digest[:2] / entry.digest[2:]
    if obj.exists():
        return obj, False
    obj.parent.mkdir(parents=True, exist_ok=True)
    scratch = layout.store / "tmp" / uuid.uuid4().hex
    scratch.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, scratch)
    scratch.chmod(0o644)
    try:
        os.link(scratch, obj)
    except FileExistsError:
        pass
    finally:
        scratch.unlink()
    return obj, True


def _place(obj: Path, dest: Path) -> None:
    """Make `dest` a hard link to `obj`, replacing whatever a failed attempt left there."""
    if dest.exists() and os.path.samefile(obj, dest):
        return
    scratch = dest.with_name(f".{dest.name}.slipway-link")
    scratch.unlink(missing_ok=True)
    try:
        os.link(obj, scratch)
    except OSError as err:
        if err.errno != errno.EMLINK:
            raise
        shutil.copyfile(obj, scratch)
    scratch.replace(dest)


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
    if result_file.exists():
        return CopyResult.model_validate_json(result_file.read_text())
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
            obj, added = _store_object(layout, entry, base / entry.path)
            _place(obj, dest)
            done["copied" if added else "linked"] += 1
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
