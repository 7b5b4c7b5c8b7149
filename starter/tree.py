"""A directory described as a content manifest (`activities.adapters.content_manifest`), each
file's sha256 taken from a cache while the file's size and mtime are what they were.

The cache is one JSON file per directory in the user's cache dir (`$XDG_CACHE_HOME/slipway`,
else `~/.cache/slipway`), keyed by relative path, with size and mtime_ns: describing an
unchanged tree of 10,000 files costs 10,000 stats, not reading every byte again. A file
modified in the last seconds is hashed but not cached, since within the clock's granularity
it could change again and keep its size and mtime.
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
from pathlib import Path

from activities.adapters.content_manifest import Item, ManifestError, check, file_mode
from slipway.limits import LimitError, UnpackLimits
from starter.uploads import UploadError

SETTLE_NS = 2_000_000_000
"""How long ago a file must have changed for its hash to be cached."""

Known = dict[str, tuple[int, int, str]]
"""Relative path → (size, mtime_ns, sha256)."""


@dataclass
class Described:
    """A tree's manifest entries, a file for each distinct content (to send it from), and
    how many files had to be read to hash them."""

    items: list[Item] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    hashed: int = 0


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


def _load(cache: Path | None, root: Path) -> Known:
    if cache is None:
        return {}
    try:
        document = json.loads(cache.read_bytes())
        if document.get("root") != str(root.resolve()):
            return {}
        return {path: (int(s), int(m), str(d)) for path, (s, m, d) in document["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _save(cache: Path | None, root: Path, known: Known) -> None:
    """Write the cache whole through a rename; a cache that cannot be written is skipped
    (the next upload hashes again)."""
    if cache is None:
        return
    document = {"root": str(root.resolve()), "files": known}
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


def _entries(root: Path, limits: UnpackLimits) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, path, lstat) of every entry under `root`, links not followed; the
    entry count, path length and depth are held to the server's limits as it goes."""
    count = 0
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(os.path.join(root, folder)) as listing:
            found = sorted(listing, key=lambda entry: entry.name)
        for entry in found:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            count += 1
            limits.count(count)
            limits.path(rel)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                pending.append(rel)
            yield rel, entry.path, info


def describe(root: Path, limits: UnpackLimits, cache: Path | None) -> Described:
    """Every entry under `root` (links kept as links), held to the server's rules and
    limits here too, so that a tree the server would refuse is not sent first."""
    known = _load(cache, root)
    kept: Known = {}
    settled = time.time_ns() - SETTLE_NS
    out = Described()
    try:
        for rel, path, info in _entries(root, limits):
            if stat.S_ISLNK(info.st_mode):
                out.items.append(Item(rel, "link", target=os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                out.items.append(Item(rel, "dir"))
            elif stat.S_ISREG(info.st_mode):
                size, digest = info.st_size, ""
                cached = known.get(rel)
                if cached is not None and cached[:2] == (info.st_size, info.st_mtime_ns):
                    digest = cached[2]
                else:
                    size, digest = _hashed(path)
                    out.hashed += 1
                if info.st_mtime_ns < settled:
                    kept[rel] = (size, info.st_mtime_ns, digest)
                out.items.append(Item(rel, "file", size, file_mode(info.st_mode), digest))
                out.sources.setdefault(digest, path)
            else:
                raise UploadError(f"{path} is not a file, a directory or a link")
        check(out.items, limits)
    except (ManifestError, LimitError) as err:
        raise UploadError(f"{root} cannot be deployed: {err}") from None
    except OSError as err:
        raise UploadError(f"{err.filename} cannot be read: {err.strerror}") from None
    if kept != known:  # an unchanged tree's cache is not written again
        _save(cache, root, kept)
    return out
