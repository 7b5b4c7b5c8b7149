"""copying_files: a release built from hard links into a content-addressed store.

A file whose content is already in the store costs a link, not a copy, so a redeploy costs
what changed. Copying resumes from the index a previous attempt heartbeated.
"""

import contextlib
import errno
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from activities.adapters import stored_tree
from activities.adapters.beat import Beat
from activities.adapters.confined import ConfinedTree, LinkInPathError
from activities.adapters.content_store import ContentStore
from activities.adapters.files import write_atomically
from activities.adapters.links import LinkError, flatten
from activities.adapters.manifest import Entry
from activities.adapters.releases import adopt_release
from slipway import metrics
from slipway.errors import BadInputError
from slipway.layout import RELEASE_MARKER, Layout
from slipway.limits import LimitError, UnpackLimits
from slipway.models import CopyResult
from slipway.static_rules import StaticRules, rules_path

_RESULT = "copy.json"
POSITION = "copy-position.json"
"""The copy's position in its work dir, saved as it goes (see `_Checkpoint`)."""
CHECKPOINT_EVERY = 0.5
"""Seconds between two writes of the copy's position to the work dir: what a SIGKILLed
attempt's successor resumes from when its heartbeats had not reached Temporal yet."""

Progress = Callable[[int, int], None]


RESERVED = ".well-known/slipway"
"""Slipway's own path in every release: an upload's entries there are left out."""


def _release_entries(
    entries: list[Entry], site_root: str, limits: UnpackLimits
) -> list[tuple[str, Entry]]:
    """What the release holds (see `links.flatten`), without the reserved path."""
    try:
        placed = flatten(entries, site_root, limits)
    except (LinkError, LimitError) as err:
        raise BadInputError(f"the static site cannot be released: {err}") from None
    return [(path, entry) for path, entry in placed if not _reserved(path)]


def _reserved(path: str) -> bool:
    return path == RESERVED or path.startswith(RESERVED + "/")


def _copy_new(tree: ConfinedTree, origin: ConfinedTree, entry: Entry, name: str) -> None:
    """Copy the source's file `entry` into a new file (a new inode) at `name`, in the
    kernel, so rewriting never touches a stored object that an earlier attempt already
    linked there. The source is read through `origin`, which follows no link."""
    out = tree.create(name, 0o644, replace=True)
    try:
        src = origin.open_file(entry.path)
        try:
            sent = 0
            while sent < entry.size:
                step = os.sendfile(out, src, sent, entry.size - sent)
                if step == 0:
                    break
                sent += step
        finally:
            os.close(src)
    finally:
        os.close(out)


def _place_file(
    store: ContentStore, tree: ConfinedTree, path: str, entry: Entry, origin: ConfinedTree | None
) -> bool:
    """Put the content of `entry` at `path` in the release: a link to the stored object if
    the store has it, else a copy of the source's file that then joins the store. True if
    it was copied."""
    obj = store.name(entry.digest)
    try:
        tree.link_in(obj, path, replace=True, source_dir=store.fd)
        return False
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno != errno.EMLINK:
            raise
    if origin is None:
        raise FileNotFoundError(errno.ENOENT, "the source is gone and the store lacks", obj)
    _copy_new(tree, origin, entry, path)
    _share(store, tree, path, entry.digest)
    return True


def _share(store: ContentStore, tree: ConfinedTree, name: str, digest: str) -> None:
    """Offer a newly copied file to the store. The release is complete either way, so when
    linking fails (another deployment stored it first, too many links) the file stays
    unshared."""
    with contextlib.suppress(OSError):
        store.fan_out(digest)
        tree.link_out(name, store.name(digest), dest_dir=store.fd)


def _check_space(
    layout: Layout, store: ContentStore, files: list[Entry], limits: UnpackLimits
) -> None:
    """Refuse to start a copy that would eat into the free-space reserve: only contents
    the store lacks cost space. Each is looked up only when a copy of every file would not
    fit, so the usual copy does not stat the store once per file before it starts."""
    free = shutil.disk_usage(layout.store).free
    try:
        limits.free_space(sum(e.size for e in files), free, "copying the release")
        return
    except LimitError:
        pass
    needed = sum(e.size for e in files if not store.has(e.digest))
    try:
        limits.free_space(needed, free, "copying the release")
    except LimitError as err:
        raise BadInputError(str(err)) from None


def _moved(
    layout: Layout,
    deployment_id: str,
    source: Path,
    release: Path,
    site_root: str,
    entries: list[Entry],
) -> bool:
    """Make the source itself the release, by one rename, when it is what the release
    would hold: all of it (its site root is its top, no entry at the reserved path, no
    link to turn into a copy) and every file a hard link into the store, as `stored_tree`
    recorded it. True if it was moved; the release is then complete but for its marker and rules.
    A retry after the move finds the release there and the source gone, and links every
    file again over itself from the store (the release's own links keep each content
    there)."""
    if site_root or any(entry.kind == "link" or _reserved(entry.path) for entry in entries):
        return False
    if release.exists() or not stored_tree.recorded(layout.work(deployment_id), source):
        return False
    release.parent.mkdir(parents=True, exist_ok=True)
    source.rename(release)
    os.utime(release)  # made now, as a release linked file by file is
    return True


def _count(tally: dict[str, list[int]]) -> None:
    """Add the files and bytes placed, by how, to the metrics: once per attempt, not per
    file."""
    for how, (placed, size) in tally.items():
        if placed:
            metrics.copied_files.labels(how).inc(placed)
            metrics.copied_bytes.labels(how).inc(size)


class _Checkpoint:
    """The copy's position, kept in the deployment's work dir (on the server whose disk the
    release is on, where every attempt of the phase runs) at most every half second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0.0

    def save(self, position: dict[str, int]) -> None:
        now = time.monotonic()
        if now - self.written >= CHECKPOINT_EVERY:
            self.written = now
            write_atomically(self.path, json.dumps(position))


def resume_point(layout: Layout, deployment_id: str, beat: Beat) -> dict[str, int]:
    """Where an earlier attempt got to: the further of its last heartbeat and its last
    checkpoint (a heartbeat is throttled by the SDK and may never have been sent)."""
    start = {"next": 0, "copied": 0, "linked": 0}
    points = [start, dict(beat.details or start)]
    saved = layout.work(deployment_id) / POSITION
    if saved.exists():
        points.append(json.loads(saved.read_text()))
    return max(points, key=lambda point: int(point["next"]))


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
    limits: UnpackLimits,
) -> CopyResult:
    """Build `releases/<deployment id>` from the source's site root.

    A static site's `[static]` rules (kept by building) go into the release beside its
    marker, so they travel with it (see `slipway.static_server`).

    A static release holds no link: each of the upload's links becomes a copy of what it
    leads to (see `links.flatten`), so the static server can refuse to follow any.

    A source that is all release already, every file a link into the store (a content
    manifest's, see `stored_tree`), becomes the release by one rename (`_moved`): a
    redeploy of a large site then costs no link at all here.

    Idempotent: every entry is placed over whatever a failed attempt left there, the index
    of the next entry is heartbeated so a retry resumes there, and the result file written
    last lets a retry adopt a finished release. Every write goes through `ConfinedTree`, so
    a link in the release (the upload's, or one planted) is never written through.
    """
    result_file = layout.work(deployment_id) / _RESULT
    adopted = finished(layout, project, deployment_id)
    if adopted is not None:
        return adopted
    done = resume_point(layout, deployment_id, beat)
    release = layout.release(project, deployment_id)
    tally = {"copied": [0, 0], "linked": [0, 0]}
    with contextlib.ExitStack() as held:
        store = held.enter_context(ContentStore(layout.store))
        if done["next"] == 0 and _moved(layout, deployment_id, source, release, site_root, entries):
            todo = [(entry.path, entry) for entry in entries]
            files = [entry for entry in entries if entry.kind == "file"]
            done = {"next": len(todo), "copied": 0, "linked": len(files)}
            tally["linked"] = [len(files), sum(e.size for e in files)]
        else:
            todo = _release_entries(entries, site_root, limits)
            files = [entry for _, entry in todo if entry.kind == "file"]
            if done["next"] == 0:
                _check_space(layout, store, files, limits)
        release.mkdir(parents=True, exist_ok=True)
        tree = held.enter_context(ConfinedTree(release))
        # None after a move (see `_moved`), whose retry links every file from the store
        origin = held.enter_context(ConfinedTree(source)) if source.is_dir() else None
        checkpoint = _Checkpoint(layout.work(deployment_id) / POSITION)
        try:
            for index in range(done["next"], len(todo)):
                beat.check()
                path, entry = todo[index]
                if entry.kind == "dir":
                    tree.mkdir(path)
                else:
                    how = "copied" if _place_file(store, tree, path, entry, origin) else "linked"
                    done[how] += 1
                    tally[how][0] += 1
                    tally[how][1] += entry.size
                done["next"] = index + 1
                beat.details = dict(done)
                checkpoint.save(done)
                progress(done["copied"] + done["linked"], len(files))
        finally:
            _count(tally)
        try:
            rules = layout.static_rules(deployment_id)
            if rules.is_file():
                kept = StaticRules.model_validate_json(rules.read_text())
                tree.write_text(rules_path(kept), kept.serialized())
            tree.write_text(RELEASE_MARKER, deployment_id)
        except LinkInPathError as err:
            raise BadInputError(
                f"the release marker {RELEASE_MARKER} cannot be written: {err} in the upload; "
                "Slipway never writes through a link: make it a directory"
            ) from None
    result = CopyResult(
        files_copied=len(files),
        total_files=len(files),
        bytes=sum(e.size for e in files),
        linked=done["linked"],
    )
    write_atomically(result_file, result.model_dump_json())
    return result


def adopt(layout: Layout, preview: str, project: str, release_id: str) -> None:
    """copying_files of a promotion: the preview's release becomes the project's own, its
    files linked, not copied (see `releases.adopt_release` for why a retry is safe)."""
    adopt_release(layout, preview, project, release_id)
