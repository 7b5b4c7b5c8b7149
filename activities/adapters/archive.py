"""Unpacking uploads so that nothing lands, or points, outside the destination.

By construction rather than by checks alone: names are refused if absolute, climbing,
or holding control characters; every write goes through `ConfinedTree`, which never passes
a link; links are made last, once each has been resolved against the whole final tree;
bytes, entries, single files, path length, depth and the compression ratio are counted while
writing, never taken from headers. A refused upload is refused whole, with the entry or the
limit (and its setting) named.
"""

import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from activities.adapters.confined import AlreadyThereError, ConfinedTree, LinkInPathError
from activities.adapters.content_manifest import HEAD as MANIFEST_HEAD
from activities.adapters.links import LinkError, check_all
from slipway.limits import LimitError, UnpackLimits

_CHUNK = 1 << 20
_NAME_MAX = 255
_BAD_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeArchiveError(ValueError):
    """The upload cannot be unpacked safely or at all; the message names the entry."""


@dataclass(frozen=True)
class Member:
    """One entry of an archive, whatever its format."""

    name: str
    kind: str  # "file", "dir", "symlink", "hardlink" or what it is when refused
    mode: int = 0o644
    target: str = ""
    open: Callable[[], IO[bytes]] | None = None


def checked_name(raw: str, limits: UnpackLimits) -> str:
    """The entry's path made canonical, or refused if it could leave the tree or name
    something no site needs."""
    if _BAD_CHARACTERS.search(raw):
        raise UnsafeArchiveError(
            f"entry {raw!r} has a control character or a backslash in its name"
        )
    if raw.startswith("/") or _DRIVE.match(raw):
        raise UnsafeArchiveError(f"entry {raw!r} has an absolute path")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"entry {raw!r} climbs out of the upload with '..'")
    if any(len(part.encode()) > _NAME_MAX for part in parts):
        raise UnsafeArchiveError(f"entry {raw[:60]!r}... has a name over {_NAME_MAX} bytes")
    name = "/".join(parts)
    limits.path(name)
    return name


def kind_of(path: Path) -> str:
    """'manifest', 'tar' or 'zip' for an upload in the store, judged by content, not by
    name."""
    with path.open("rb") as head:
        magic = head.read(262)
    if magic.startswith(MANIFEST_HEAD):
        return "manifest"
    if zipfile.is_zipfile(path):
        return "zip"
    if (
        magic[:2] in (b"\x1f\x8b", b"BZ")
        or magic[:6] == b"\xfd7zXZ\x00"
        or magic[257:262] == b"ustar"
    ):
        return "tar"
    raise UnsafeArchiveError("the upload is neither a .tar.gz, a .tar nor a .zip archive")


def _tar_members(tar: tarfile.TarFile) -> Iterator[Member]:
    for info in tar:
        if info.isreg():
            yield Member(info.name, "file", info.mode, open=partial(_extracted, tar, info))
        elif info.isdir():
            yield Member(info.name, "dir")
        elif info.issym():
            yield Member(info.name, "symlink", target=info.linkname)
        elif info.islnk():
            yield Member(info.name, "hardlink", target=info.linkname)
        elif info.isdev() or info.isfifo():
            yield Member(info.name, "device file or FIFO")
        else:
            yield Member(info.name, "entry of an unsupported type")


def _extracted(tar: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(info)
    if handle is None:
        raise UnsafeArchiveError(f"entry {info.name!r} has no content")
    return handle


def _zip_members(zf: zipfile.ZipFile, limits: UnpackLimits) -> Iterator[Member]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            yield Member(info.filename, "dir")
        elif stat.S_ISLNK(mode):
            if info.file_size > limits.max_path_length:
                raise UnsafeArchiveError(f"the link {info.filename!r} has an oversized target")
            yield Member(info.filename, "symlink", target=zf.read(info).decode())
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            yield Member(info.filename, "device file or FIFO")
        else:
            yield Member(info.filename, "file", mode, open=partial(zf.open, info))


class _Unpacking:
    """One upload being written: what each path is, and what has been counted."""

    def __init__(self, tree: ConfinedTree, limits: UnpackLimits, compressed: int) -> None:
        self.tree = tree
        self.limits = limits
        self.compressed = compressed
        self.free = shutil.disk_usage(tree.root).free
        self.kinds: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.written = 0

    def claim(self, name: str, kind: str) -> None:
        """Record what `name` is; a path may not be two things, nor lie under a file or a
        link."""
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            above = self.kinds.setdefault(parent, "dir")
            if above != "dir":
                raise UnsafeArchiveError(
                    f"entry {name!r} lies under {parent!r}, which is a {above}"
                )
        seen = self.kinds.get(name)
        if seen is not None and not (seen == kind == "dir"):
            raise UnsafeArchiveError(f"entry {name!r} appears twice")
        self.kinds[name] = kind
        self.limits.count(len(self.kinds))

    def add(self, member: Member) -> None:
        """Write one member, or hold a link back until every entry is known."""
        if member.kind not in ("file", "dir", "symlink", "hardlink"):
            raise UnsafeArchiveError(f"entry {member.name!r} is a {member.kind}")
        name = checked_name(member.name, self.limits)
        if not name:
            return
        self.claim(name, member.kind)
        if member.kind == "dir":
            self.tree.mkdir(name)
        elif member.kind == "symlink":
            self.links[name] = member.target
        elif member.kind == "hardlink":
            existing = checked_name(member.target, self.limits)
            if self.kinds.get(existing) != "file":
                raise UnsafeArchiveError(
                    f"the hard link {member.name!r} names {member.target!r}, which is not a "
                    "file earlier in the upload"
                )
            self.tree.hardlink(name, existing)
        elif member.open is not None:
            self._write(name, member.mode, member.open)

    def _write(self, name: str, mode: int, open_member: Callable[[], IO[bytes]]) -> None:
        out = self.tree.create(name, 0o755 if mode & 0o111 else 0o644)
        size = 0
        with os.fdopen(out, "wb") as target, open_member() as source:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                self.written += len(chunk)
                self.limits.file(name, size)
                self.limits.total(self.written)
                self.limits.ratio(self.written, self.compressed)
                self.limits.free_space(self.written, self.free, "unpacking the upload")
                target.write(chunk)

    def finish(self) -> None:
        """Judge every link against the final tree, then make them."""
        check_all(self.links)
        for name in sorted(self.links):
            self.tree.symlink(name, self.links[name])


def unpack(upload: Path, dest: Path, limits: UnpackLimits, check: Callable[[], None]) -> None:
    """Unpack a .tar(.gz/.bz2/.xz) or .zip upload into the empty directory `dest`; `check`
    runs between entries, so a cancelled deployment stops unpacking. (A content manifest
    is built by `blobs.materialize`.)"""
    kind = kind_of(upload)
    if kind == "manifest":
        raise UnsafeArchiveError("a content manifest is no archive")
    try:
        with ConfinedTree(dest) as tree:
            unpacking = _Unpacking(tree, limits, upload.stat().st_size)
            if kind == "zip":
                with zipfile.ZipFile(upload) as zf:
                    for member in _zip_members(zf, limits):
                        check()
                        unpacking.add(member)
            else:
                with tarfile.open(upload, "r:*") as tar:
                    for member in _tar_members(tar):
                        check()
                        unpacking.add(member)
            unpacking.finish()
    except (LimitError, LinkError, LinkInPathError, AlreadyThereError) as err:
        raise UnsafeArchiveError(str(err)) from None
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as err:
        raise UnsafeArchiveError(f"the archive is corrupt or truncated: {err}") from None
    except (RuntimeError, NotImplementedError) as err:
        # zipfile: an encrypted entry, or a compression method it cannot read.
        raise UnsafeArchiveError(f"the archive cannot be read: {err}") from None
    except OSError as err:
        if err.errno is None:
            # Decompressors report a damaged stream as an OSError without an errno.
            raise UnsafeArchiveError(f"the archive is corrupt or truncated: {err}") from None
        raise
