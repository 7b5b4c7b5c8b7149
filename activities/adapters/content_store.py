"""The server's content store (`Layout.store`): file contents kept as `ab/cdef...` under the
sha256 of their bytes, which release files are hard links to.

It is held open by one handle, and objects are named relative to it: placing a file then
walks two path components instead of the store's whole path, and each fan-out directory is
made once per copy, not tried again for every file that lands in it.
"""

import contextlib
import os
from pathlib import Path
from types import TracebackType

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class ContentStore:
    """An open content store; `fd` is the handle that object names are relative to."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(root, _DIR)
        self._fanned: set[str] = set()

    def __enter__(self) -> "ContentStore":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        os.close(self.fd)

    @staticmethod
    def name(digest: str) -> str:
        """The object of a content, relative to the store."""
        return f"{digest[:2]}/{digest[2:]}"

    def has(self, digest: str) -> bool:
        """True if the store holds the content."""
        try:
            os.stat(self.name(digest), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def fan_out(self, digest: str) -> None:
        """Make sure the directory that the content's object goes in exists."""
        prefix = digest[:2]
        if prefix not in self._fanned:
            with contextlib.suppress(FileExistsError):
                os.mkdir(prefix, 0o755, dir_fd=self.fd)
            self._fanned.add(prefix)
