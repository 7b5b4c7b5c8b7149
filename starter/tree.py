"""A directory described as a content manifest (`activities.adapters.content_manifest`), each
file's sha256 taken from a cache while the file is, by its size, mtime and inode, the one
that was hashed; and the manifest last sent from it, so that a redeploy sends only what
changed against it.

The cache is one JSON file per directory in the user's cache dir (`$XDG_CACHE_HOME/slipway`,
else `~/.cache/slipway`), keyed by relative path: describing an unchanged tree of 10,000
files costs 10,000 stats, not reading every byte again. A file modified in the last seconds
is hashed but not cached, since within the clock's granularity it could change again and
keep its size and mtime; a file replaced by another (a rename over it, a copy keeping its
times) has another inode. The manifest last sent is kept with the upload id the API gave it
and that API's URL: the next deployment to the same API describes its tree as the changes
to that upload (`changes`), and the API answers 404 if it no longer holds it.
"""

import contextlib
import hashlib
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from activities.adapters.content_manifest import Item, ManifestError, check, file_mode
from slipway.limits import LimitError, UnpackLimits
from starter.uploads import UploadError

SETTLE_NS = 2_000_000_000
"""How long ago a file must have changed for its hash to be cached."""

VERSION = 2
"""The cache's format: a cache of another version is read as empty."""

UNSETTLED = -1
"""The mtime kept for a file whose hash is not to be reused."""

Row = tuple[str, int, int, str, int, int]
"""One entry as the cache keeps it: kind, size, mode, sha256 (a link: its target),
mtime_ns and inode (a file's; else UNSETTLED and 0)."""


@dataclass(frozen=True)
class Sent:
    """The upload an API gave the manifest last sent from this tree."""

    api: str
    upload_id: str


@dataclass
class Described:
    """A tree's manifest entries, a file for each distinct content (to send it from), how
    many files had to be read to hash them, the entries as the cache keeps them, and the
    manifest last sent from the tree (None if none is known)."""

    items: list[Item] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    hashed: int = 0
    rows: dict[str, Row] = field(default_factory=dict)
    sent: Sent | None = None
    sent_rows: dict[str, Row] = field(default_factory=dict)


def cache_file(root: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the hashes of the files under `root` are cached; None if there is no cache
    dir (no home and no XDG_CACHE_HOME)."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return Path(base) / "slipway" / "hashes" / f"{name}.json"


def _load(cache: Path | None, root: Path) -> tuple[dict[str, Row], Sent | None]:
    """The rows kept for `root` and the upload they were sent as; nothing if the cache is
    missing, of another version or another directory's, or unreadable."""
    if cache is None:
        return {}, None
    try:
        document = json.loads(cache.read_bytes())
        if document.get("version") != VERSION or document.get("root") != str(root.resolve()):
            return {}, None
        rows: dict[str, Row] = {}
        for path, (kind, size, mode, digest, mtime, ino) in document["entries"].items():
            rows[path] = (str(kind), int(size), int(mode), str(digest), int(mtime), int(ino))
        sent = document.get("sent")
        if sent is None:
            return rows, None
        return rows, Sent(str(sent["api"]), str(sent["uploadId"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}, None


def remember(cache: Path | None, root: Path, tree: Described, sent: Sent | None) -> None:
    """Keep the tree's rows, and the upload its manifest was sent as, whole through a
    rename; an unchanged cache is not written again, and one that cannot be written is
    skipped (the next upload hashes again and sends the whole manifest)."""
    if cache is None or (tree.rows == tree.sent_rows and sent == tree.sent):
        return
    document: dict[str, object] = {"version": VERSION, "root": str(root.resolve())}
    document["entries"] = tree.rows
    document["sent"] = None if sent is None else {"api": sent.api, "uploadId": sent.upload_id}
    scratch = cache.with_name(f".{cache.name}.{uuid.uuid4().hex}")
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            scratch.write_text(json.dumps(document, separators=(",", ":")))
            scratch.replace(cache)
        finally:
            scratch.unlink(missing_ok=True)


def _hashed(path: str) -> tuple[int, str]:
    """The file's size and sha256, from one open handle (a link put in its place is refused,
    not followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd).st_size
        return size, hashlib.file_digest(handle, "sha256").hexdigest()


_NAME = attrgetter("name")


def _entries(root: Path, limits: UnpackLimits) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, path, lstat) of every entry under `root`, links not followed; the
    entry count, path length and depth are held to the server's limits as it goes."""
    count = 0
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(os.path.join(root, folder)) as listing:
            found = sorted(listing, key=_NAME)
        prefix = f"{folder}/" if folder else ""
        count += len(found)
        limits.count(count)
        for entry in found:
            rel = prefix + entry.name
            limits.path(rel)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                pending.append(rel)
            yield rel, entry.path, info


def describe(root: Path, limits: UnpackLimits, cache: Path | None, api: str = "") -> Described:
    """Every entry under `root` (links kept as links), held to the server's rules and
    limits here too, so that a tree the server would refuse is not sent first. With the
    `api` it is to be sent to, the manifest last sent there from this tree too."""
    known, sent = _load(cache, root)
    settled = time.time_ns() - SETTLE_NS
    out = Described(sent=sent if sent is not None and sent.api == api else None)
    if out.sent is not None:
        out.sent_rows = known
    rows = out.rows
    try:
        for rel, path, info in _entries(root, limits):
            mode = info.st_mode
            if stat.S_ISREG(mode):
                cached = known.get(rel)
                if (
                    cached is not None
                    and cached[0] == "file"
                    and cached[1] == info.st_size
                    and cached[4] == info.st_mtime_ns
                    and cached[5] == info.st_ino
                ):
                    size, digest = info.st_size, cached[3]
                else:
                    size, digest = _hashed(path)
                    out.hashed += 1
                kept = info.st_mtime_ns if info.st_mtime_ns < settled else UNSETTLED
                item = Item(rel, "file", size, file_mode(mode), digest)
                rows[rel] = ("file", size, item.mode, digest, kept, info.st_ino)
                out.sources.setdefault(digest, path)
            elif stat.S_ISDIR(mode):
                item = Item(rel, "dir")
                rows[rel] = ("dir", 0, 0, "", UNSETTLED, 0)
            elif stat.S_ISLNK(mode):
                item = Item(rel, "link", target=os.readlink(path))
                rows[rel] = ("link", 0, 0, item.target, UNSETTLED, 0)
            else:
                raise UploadError(f"{path} is not a file, a directory or a link")
            out.items.append(item)
        check(out.items, limits)
    except (ManifestError, LimitError) as err:
        raise UploadError(f"{root} cannot be deployed: {err}") from None
    except OSError as err:
        raise UploadError(f"{err.filename} cannot be read: {err.strerror}") from None
    if out.sent is None:
        out.sent_rows = {}
    return out


def _item(path: str, row: Row) -> Item:
    kind, size, mode, digest = row[:4]
    if kind == "file":
        return Item(path, kind, size, mode, digest)
    if kind == "link":
        return Item(path, kind, target=digest)
    return Item(path, kind)


def changes(tree: Described) -> tuple[list[Item], list[str]]:
    """The tree against the manifest last sent from it (`tree.sent`): the entries new or
    changed, and the paths no longer there."""
    before = tree.sent_rows
    changed = [
        item
        for item in tree.items
        if (row := before.get(item.path)) is None or _item(item.path, row) != item
    ]
    removed = [path for path in before if path not in tree.rows]
    return changed, removed
