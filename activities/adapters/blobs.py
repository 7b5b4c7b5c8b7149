"""The blob store beside the uploads (`<upload store>/blobs/ab/cdef...`): file contents kept
under the sha256 of their bytes, and the trees a content manifest builds from them.

A blob is written whole and verified, or not at all: streamed into a scratch file while its
digest is computed, and renamed into place only if the bytes hash to the name they were sent
under, so no reader ever sees a partial or a wrong blob.

Building a tree takes each content from the server's own content store (`Layout.store`,
which release files are hard links into) when it holds it: a hard link, nothing read, since
only content Slipway hashed itself is stored there. A content the store lacks comes from its
blob, checked again (a regular file, of the declared size, hashing to its name) because the
upload store can be shared and written by other means: it is hashed while it is copied into
a new file, which then joins the content store. So a redeploy of a large site costs links,
not reads, and no file of a tree ever shares an inode with the upload store. Every write
goes through `ConfinedTree`, so nothing is written through a link, and links come last.
"""

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from activities.adapters.confined import AlreadyThereError, ConfinedTree, LinkInPathError
from activities.adapters.content_manifest import (
    DIGEST,
    EXECUTABLE,
    REGULAR,
    Item,
    ManifestError,
    largest,
    parse,
)
from activities.adapters.manifest import Entry
from slipway.limits import LimitError, UnpackLimits, size

BLOBS = "blobs"
"""The blob store's directory in the upload store; it is no upload itself."""

SCRATCH = "incoming"
"""Where blobs are written before they are renamed into place."""
_CHUNK = 1 << 20
_COPY_INSTEAD = (errno.EXDEV, errno.EMLINK, errno.EPERM)
"""Why a hard link can fail where a copy works: another file system, too many links, or a
file system that has no hard links."""


class BlobError(ValueError):
    """A blob was refused: its content is not what its name says, or it is too large."""


class BlobTooLargeError(BlobError):
    """A blob is larger than any file may be."""


def blob_path(uploads: Path, digest: str) -> Path:
    """Where the blob with this sha256 is kept; only a digest names one."""
    return Path(_blob_file(f"{uploads}/{BLOBS}", digest))


def _blob_file(blobs: str, digest: str) -> str:
    """`blob_path` as a string, under the blob store `blobs`: what a loop over every file
    of a manifest asks for."""
    if not DIGEST.fullmatch(digest):
        raise BlobError(f"{digest[:80]!r} is not a sha256 of 64 lowercase hex digits")
    return f"{blobs}/{digest[:2]}/{digest[2:]}"


class BlobWriter:
    """One blob arriving: its bytes go to a scratch file in the store while they are
    hashed and counted, and it is renamed into place only once they match its name."""

    def __init__(self, uploads: Path, digest: str, max_bytes: int) -> None:
        self.final = blob_path(uploads, digest)
        self.digest = digest
        self.max_bytes = max_bytes
        scratch = uploads / BLOBS / SCRATCH
        scratch.mkdir(parents=True, exist_ok=True)
        self.scratch = scratch / uuid.uuid4().hex
        self._out: BinaryIO = self.scratch.open("xb")
        # Readable whatever the umask: a blob becomes, through a hard link, a source file.
        os.fchmod(self._out.fileno(), REGULAR)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Hash and keep the next bytes; refuse once they pass the largest file allowed."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise BlobTooLargeError(
                f"the blob is larger than {size(self.max_bytes)} (SLIPWAY_UNPACK_MAX_FILE_BYTES)"
            )
        self._hash.update(chunk)
        self._out.write(chunk)

    def commit(self) -> None:
        """Put the blob in place if its bytes hash to its name, else refuse it; either way
        the scratch file is gone afterwards."""
        self._out.close()
        found = self._hash.hexdigest()
        if found != self.digest:
            self.discard()
            raise BlobError(f"the content's sha256 is {found}, not {self.digest}")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.scratch, self.final)

    def discard(self) -> None:
        """Drop what arrived."""
        self._out.close()
        self.scratch.unlink(missing_ok=True)


def put(uploads: Path, digest: str, data: bytes, max_bytes: int) -> None:
    """Store a whole blob held in memory, as `BlobWriter` would."""
    writer = BlobWriter(uploads, digest, max_bytes)
    try:
        writer.write(data)
    except BlobError:
        writer.discard()
        raise
    writer.commit()


TOUCH_AFTER = 3600.0
"""Seconds after which a blob a manifest finds is touched again (cleanup counts a blob's age
from its last touch); a younger one is left alone, sparing a write per file per upload."""


def missing_blobs(uploads: Path, items: Iterable[Item]) -> list[str]:
    """The digests of the files' contents the store lacks, sorted. A blob it has must have
    the size the manifest gives (else the manifest lies, and is refused); one not touched
    for an hour is touched, so that cleanup, which only removes blobs untouched for the
    upload retention, keeps it."""
    lacking: set[str] = set()
    seen: set[str] = set()
    touched_before = time.time() - TOUCH_AFTER
    blobs = f"{uploads}/{BLOBS}"
    for entry in items:
        if entry.kind != "file" or entry.sha256 in seen:
            continue
        seen.add(entry.sha256)
        path = _blob_file(blobs, entry.sha256)
        try:
            info = os.stat(path)
            if info.st_mtime < touched_before:
                os.utime(path)
        except FileNotFoundError:
            lacking.add(entry.sha256)
            continue
        if info.st_size != entry.size:
            raise ManifestError(
                f"entry {entry.path!r} says it has {entry.size} bytes; its content "
                f"{entry.sha256} has {info.st_size}"
            )
    return sorted(lacking)


def _open_blob(uploads: Path, entry: Item) -> int:
    """A handle on the entry's blob, once it has proved to be a regular file (not a link)
    of the declared size."""
    try:
        fd = os.open(blob_path(uploads, entry.sha256), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ManifestError(
            f"entry {entry.path!r}: its content {entry.sha256} is not in the blob store; "
            "upload it again"
        ) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ManifestError(f"entry {entry.path!r}: its blob is a link") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
        os.close(fd)
        raise ManifestError(
            f"entry {entry.path!r} says it has {entry.size} bytes; its blob "
            f"{entry.sha256} has {info.st_size}"
        )
    return fd


def _copy(
    tree: ConfinedTree, source: int, entry: Item, feed: Callable[[bytes], object] | None
) -> None:
    """Copy the open file `source` into a new file at the entry's path, handing each chunk
    to `feed` (a digest's update) as it goes by."""
    out = tree.create(entry.path, entry.mode)
    try:
        while chunk := os.read(source, _CHUNK):
            if feed is not None:
                feed(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
    finally:
        os.close(out)


@dataclass(frozen=True)
class Built:
    """A tree built from a manifest: its description (`described`), and whether every file
    of it is a hard link into the content store."""

    entries: list[Entry]
    stored: bool


class _Building:
    """One tree being built: where its contents come from, what copies cost, whether every
    file is a link into the store."""

    def __init__(
        self, tree: ConfinedTree, uploads: Path, store: Path, limits: UnpackLimits
    ) -> None:
        self.tree = tree
        self.uploads = uploads
        self.store = store
        self.limits = limits
        self.free = shutil.disk_usage(tree.root).free
        self.copied = 0
        self.all_stored = True

    def stored(self, digest: str) -> str:
        return f"{self.store}/{digest[:2]}/{digest[2:]}"

    def place(self, entry: Item) -> None:
        """Hard-link the entry's content from the store; copy it where a link cannot be
        made (an executable file, whose mode a stored object does not have, is always
        copied); take it from its blob, verified, when the store lacks it."""
        obj = self.stored(entry.sha256)
        try:
            info = os.stat(obj, follow_symlinks=False)
        except FileNotFoundError:
            self._from_blob(entry, obj)
            return
        if not stat.S_ISREG(info.st_mode) or info.st_size != entry.size:
            raise ManifestError(
                f"entry {entry.path!r} says it has {entry.size} bytes; its content "
                f"{entry.sha256} has {info.st_size}"
            )
        try:
            if entry.mode != EXECUTABLE:
                try:
                    self.tree.link_in(obj, entry.path)
                    return
                except OSError as err:
                    if err.errno not in _COPY_INSTEAD:
                        raise
            source = os.open(obj, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:  # cleanup took it from the store just now
            self._from_blob(entry, obj)
            return
        self.all_stored = False
        try:
            self._spend(entry)
            _copy(self.tree, source, entry, None)
        finally:
            os.close(source)

    def _spend(self, entry: Item) -> None:
        self.copied += entry.size
        self.limits.free_space(self.copied, self.free, "building the upload from its blobs")

    def _from_blob(self, entry: Item, obj: str) -> None:
        """Copy the entry's blob into a new file, hashing it on the way; refuse it unless
        it hashes to its name. The new file joins the store (unless executable), so the
        next tree that holds this content links it instead: a blob is read once, and
        nothing of the upload store, which other servers may write, is linked into a tree."""
        blob = _open_blob(self.uploads, entry)
        digest = hashlib.sha256()
        try:
            self._spend(entry)
            _copy(self.tree, blob, entry, digest.update)
        finally:
            os.close(blob)
        found = digest.hexdigest()
        if found != entry.sha256:
            raise ManifestError(
                f"entry {entry.path!r}: its blob's content hashes to {found}, not {entry.sha256}"
            )
        shared = False
        if entry.mode != EXECUTABLE:
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(obj), exist_ok=True)
                self.tree.link_out(entry.path, Path(obj))
                shared = True
        self.all_stored = self.all_stored and shared


def described(items: list[Item]) -> list[Entry]:
    """The built tree as `manifest.scan` describes one, without reading it again: every
    entry, the directories the manifest leaves implicit too, sorted by path."""
    entries: list[Entry] = []
    folders: set[str] = set()
    for item in items:
        parent = item.path.rpartition("/")[0]
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
        if item.kind == "file":
            entries.append(Entry(item.path, "file", item.sha256, item.size))
        elif item.kind == "link":
            entries.append(Entry(item.path, "link", target=item.target))
        else:
            folders.add(item.path)
    entries.extend(Entry(folder, "dir") for folder in folders)
    entries.sort(key=lambda entry: entry.path)
    return entries


def materialize(
    manifest: Path, dest: Path, store: Path, limits: UnpackLimits, check: Callable[[], None]
) -> Built:
    """Build the tree the stored manifest describes into the empty directory `dest`, from
    the server's content store `store` (see `_Building.place`) and the blob store beside
    the manifest; `check` runs between entries, so a cancelled deployment stops. The tree's
    description (`described`) gives each file the digest of its content, taken from the
    store or checked against its blob. Anything wrong is a `ManifestError` naming the
    entry."""
    if manifest.stat().st_size > largest(limits):
        raise ManifestError("the manifest is larger than any within the limits")
    items = parse(manifest.read_bytes(), limits)
    try:
        with ConfinedTree(dest) as tree:
            building = _Building(tree, manifest.parent, store, limits)
            for entry in items:
                check()
                if entry.kind == "dir":
                    tree.mkdir(entry.path)
                elif entry.kind == "file":
                    building.place(entry)
            for entry in items:
                if entry.kind == "link":
                    tree.symlink(entry.path, entry.target)
    except (LimitError, LinkInPathError, AlreadyThereError) as err:
        raise ManifestError(str(err)) from None
    return Built(described(items), building.all_stored)
