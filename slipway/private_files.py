"""Files only their owner may read (keys, tokens, passwords), made once and then shared by
every process of the home."""

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path


def private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of `path`, made with `make()` (readable by its owner only) if it does not
    exist. It appears whole or not at all: written aside, then linked into place, which fails
    if another process got there first; then both read what that one wrote."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(make())
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            aside.unlink(missing_ok=True)
    return path.read_bytes().strip()
