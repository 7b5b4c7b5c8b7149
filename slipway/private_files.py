"""Files only their owner may read (keys, tokens, passwords), made once and then shared by
every process of the home."""

import os
from collections.abc import Callable
from pathlib import Path


def private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of `path`, written first with `make()` (readable by its owner only) if it
    does not exist; when two processes race, both read what the first one wrote."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(make())
    return path.read_bytes().strip()
