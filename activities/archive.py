"""Unpacking uploads without ever writing outside the destination.

Every entry is checked before anything is written: no absolute paths, no `..`, no device
files or FIFOs, no links that resolve outside the tree. A corrupt archive is refused whole.
"""

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path


class UnsafeArchiveError(ValueError):
    """The upload cannot be unpacked safely or at all; the message names the entry."""


def _checked_name(name: str) -> str:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"entry {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"entry {name!r} climbs out of the upload with '..'")
    return "/".join(parts)


def _check_link(name: str, target: str) -> None:
    if target.startswith("/"):
        raise UnsafeArchiveError(f"link {name!r} points to the absolute path {target!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(f"link {name!r} points outside the upload ({target!r})")


def _inside(root: Path, path: Path, name: str) -> None:
    """Refuse `path` if, with every link on the way resolved, it leaves `root`: this catches
    a link placed under an earlier link, which a check of the names alone cannot."""
    if not path.resolve().is_relative_to(root):
        raise UnsafeArchiveError(f"entry {name!r} leads outside the upload through a link")


def kind_of(path: Path) -> str:
    """'tar', 'zip' or 'dir' for an upload in the store, judged by content, not by name."""
    if path.is_dir():
        return "dir"
    if zipfile.is_zipfile(path):
        return "zip"
    with path.open("rb") as head:
        magic = head.read(262)
    if magic[:2] == b"\x1f\x8b" or magic[257:262] == b"ustar":
        return "tar"
    raise UnsafeArchiveError("the upload is neither a directory, a .tar.gz nor a .zip archive")


def extract_tar(archive: Path, dest: Path) -> None:
    """Unpack a (possibly compressed) tar archive into `dest`, which must be empty."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                name = _checked_name(member.name)
                if member.isdev() or member.isfifo():
                    raise UnsafeArchiveError(f"entry {member.name!r} is a device file or FIFO")
                if member.issym():
                    _check_link(name, member.linkname)
                elif member.islnk():
                    _checked_name(member.linkname)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, tarfile.FilterError):
            raise UnsafeArchiveError(f"unsafe entry: {err}") from err
        raise UnsafeArchiveError(f"the archive is corrupt or truncated: {err}") from err


def extract_zip(archive: Path, dest: Path) -> None:
    """Unpack a zip archive into `dest`, which must be empty; symlinks stay inside."""
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            plan: list[tuple[zipfile.ZipInfo, str, int]] = []
            for info in entries:
                name = _checked_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                    raise UnsafeArchiveError(f"entry {info.filename!r} is a device file or FIFO")
                if stat.S_ISLNK(mode):
                    _check_link(name, zf.read(info).decode())
                plan.append((info, name, mode))
            root = dest.resolve()
            for info, name, mode in plan:
                if not name:
                    continue
                target = dest / name
                _inside(root, target, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if stat.S_ISLNK(mode):
                    link = zf.read(info).decode()
                    _inside(root, target.parent / link, info.filename)
                    os.symlink(link, target)
                    continue
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                if mode & 0o111:
                    target.chmod(0o755)
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError) as err:
        raise UnsafeArchiveError(f"the archive is corrupt or truncated: {err}") from err


def copy_dir(source: Path, dest: Path) -> None:
    """Copy an uploaded directory into `dest` under the same rules as an archive."""
    for root, dirs, files in os.walk(source):
        for entry in dirs + files:
            path = Path(root) / entry
            rel = path.relative_to(source).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                _check_link(rel, os.readlink(path))
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"entry {rel!r} is a device file, FIFO or socket")
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


def unpack(upload: Path, dest: Path) -> None:
    """Unpack an upload of any supported kind into the empty directory `dest`."""
    kind = kind_of(upload)
    if kind == "dir":
        copy_dir(upload, dest)
    elif kind == "zip":
        extract_zip(upload, dest)
    else:
        extract_tar(upload, dest)
