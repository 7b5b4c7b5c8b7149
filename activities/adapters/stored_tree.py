"""A built tree every file of which is a hard link into the content store, and nothing but
its entries: recorded by its directory's inode and change time, so that a release can be
that very tree, moved into place by one rename instead of linked again file by file.
Another tree put in its place (a static site's files exported from its image) has another
inode, and anything added at its top changes its change time: neither is taken for it."""

import os
from pathlib import Path

from activities.adapters.files import write_atomically

_RECORD = "source-stored"


def _identity(tree: Path) -> str:
    info = os.stat(tree, follow_symlinks=False)
    return f"{info.st_dev}:{info.st_ino}:{info.st_ctime_ns}"


def record(work: Path, tree: Path) -> None:
    """Say that `tree`, in the work dir `work`, holds only links into the store."""
    write_atomically(work / _RECORD, _identity(tree))


def forget(work: Path) -> None:
    """Say nothing of the work dir's tree any more."""
    (work / _RECORD).unlink(missing_ok=True)


def recorded(work: Path, tree: Path) -> bool:
    """True if `tree` is, unchanged, the tree `record` spoke of."""
    try:
        return (work / _RECORD).read_text() == _identity(tree)
    except FileNotFoundError:
        return False
