"""Writing inside a directory without ever passing through a link.

Every path is walked one component at a time from an open handle on the root, each directory
opened with O_NOFOLLOW, and the last component created with O_NOFOLLOW (and O_EXCL where it
must be new). A link inside the tree, planted by an upload or by anything else, makes the
write fail instead of leading it elsewhere: this holds by construction, whatever checks ran
before.
"""

import contextlib
import errno
import os
import stat
from pathlib import Path
from types import TracebackType

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_THROUGH_LINK = (errno.ELOOP, errno.ENOTDIR)


class LinkInPathError(ValueError):
    """A path inside the tree passes through a link or a file; the message names it."""


class AlreadyThereError(ValueError):
    """Something already has the name a new entry needs; the message names it."""


def split(name: str) -> tuple[list[str], str]:
    """The parent components and the last one of a checked relative path."""
    parts = name.split("/")
    return parts[:-1], parts[-1]


class ConfinedTree:
    """A directory to write into (or read from), held open so that renaming or replacing
    its path changes nothing about where the writes go."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root_fd = os.open(root, _DIR)
        self._last: tuple[str, int] | None = None

    def __enter__(self) -> "ConfinedTree":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the handles; the tree is not written to afterwards."""
        self._forget()
        os.close(self._root_fd)

    def _forget(self) -> None:
        if self._last is not None:
            os.close(self._last[1])
            self._last = None

    def _open_dir(self, parts: list[str], create: bool) -> int:
        """A new handle on the directory `parts` below the root, made if `create`."""
        fd = os.dup(self._root_fd)
        for index, part in enumerate(parts):
            try:
                try:
                    child = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, _DIR, dir_fd=fd)
            except OSError as err:
                os.close(fd)
                if err.errno in _THROUGH_LINK:
                    where = "/".join(parts[: index + 1])
                    raise LinkInPathError(
                        f"{where!r} is a link or a file, not a directory"
                    ) from None
                raise
            os.close(fd)
            fd = child
        return fd

    def parent(self, name: str, create: bool = True) -> tuple[int, str]:
        """A handle on the directory that holds `name` (owned by the tree, valid until the
        next call) and the last component. Consecutive entries of one directory share it."""
        key, _, last = name.rpartition("/")
        if self._last is None or self._last[0] != key:
            fd = self._open_dir(key.split("/") if key else [], create)
            self._forget()
            self._last = (key, fd)
        return self._last[1], last

    def mkdir(self, name: str) -> None:
        """Make the directory `name` and its parents; one already there must be a directory."""
        fd = self._open_dir(name.split("/"), create=True)
        os.close(fd)

    def create(self, name: str, mode: int, replace: bool = False) -> int:
        """Open a new regular file at `name` for writing (the caller closes it). With
        `replace`, what a failed attempt left there is removed first; it is never written
        through."""
        fd, last = self.parent(name)
        try:
            return os.open(last, _NEW, mode, dir_fd=fd)
        except FileExistsError:
            if not replace:
                raise AlreadyThereError(f"{name!r} appears twice") from None
        self._remove(fd, last, name)
        return os.open(last, _NEW, mode, dir_fd=fd)

    def open_file(self, name: str) -> int:
        """Open the file `name` for reading (the caller closes it); a link at `name` or on
        the way to it is refused, not followed."""
        fd, last = self.parent(name, create=False)
        return os.open(last, _READ, dir_fd=fd)

    def _remove(self, fd: int, last: str, name: str) -> None:
        try:
            os.unlink(last, dir_fd=fd)
        except IsADirectoryError:
            raise AlreadyThereError(f"{name!r} is a directory") from None
        except FileNotFoundError:
            pass

    def link_in(
        self, source: str | Path, name: str, replace: bool = False, source_dir: int | None = None
    ) -> None:
        """Hard-link the file `source` (outside the tree, Slipway's own; relative to the
        directory handle `source_dir` if given) at `name`."""
        fd, last = self.parent(name)
        try:
            os.link(source, last, src_dir_fd=source_dir, dst_dir_fd=fd, follow_symlinks=False)
            return
        except FileExistsError:
            if not replace:
                raise AlreadyThereError(f"{name!r} appears twice") from None
            placed = os.stat(last, dir_fd=fd, follow_symlinks=False)
            if os.path.samestat(os.stat(source, dir_fd=source_dir), placed):
                return
        self._remove(fd, last, name)
        os.link(source, last, src_dir_fd=source_dir, dst_dir_fd=fd, follow_symlinks=False)

    def link_out(self, name: str, dest: str | Path, dest_dir: int | None = None) -> None:
        """Give the regular file `name` a second name `dest` outside the tree (Slipway's
        own store; relative to the directory handle `dest_dir` if given); a link at `name`
        is linked itself, never what it points to."""
        fd, last = self.parent(name, create=False)
        os.link(last, dest, src_dir_fd=fd, dst_dir_fd=dest_dir, follow_symlinks=False)

    def hardlink(self, name: str, existing: str) -> None:
        """Make `name` another name of the regular file `existing`, both inside the tree."""
        source_fd = self._open_dir(split(existing)[0], create=False)
        try:
            source = split(existing)[1]
            info = os.stat(source, dir_fd=source_fd, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise LinkInPathError(f"the hard link {name!r} names {existing!r}, not a file")
            fd, last = self.parent(name)
            os.link(source, last, src_dir_fd=source_fd, dst_dir_fd=fd, follow_symlinks=False)
        except FileExistsError:
            raise AlreadyThereError(f"{name!r} appears twice") from None
        finally:
            os.close(source_fd)

    def symlink(self, name: str, target: str, replace: bool = False) -> None:
        """Make `name` a symbolic link to `target` (checked by the caller; never followed
        here)."""
        fd, last = self.parent(name)
        try:
            os.symlink(target, last, dir_fd=fd)
            return
        except FileExistsError:
            if not replace:
                raise AlreadyThereError(f"{name!r} is both a link and something else") from None
        self._remove(fd, last, name)
        os.symlink(target, last, dir_fd=fd)

    def write_text(self, name: str, text: str) -> None:
        """Replace `name` with `text` through a rename in its directory, so a reader sees
        the old content or the new, never a part; a link at `name` is replaced, not
        followed."""
        fd, last = self.parent(name)
        scratch = f".{last}.tmp"
        self._remove(fd, scratch, name)
        out = os.open(scratch, _NEW, 0o644, dir_fd=fd)
        try:
            os.write(out, text.encode())
        finally:
            os.close(out)
        os.replace(scratch, last, src_dir_fd=fd, dst_dir_fd=fd)
