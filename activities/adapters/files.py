"""Replacing files and links so a reader sees the old or the new one, never a part or a gap."""

import os
from pathlib import Path


def write_atomically(path: Path, text: str, scratch_dir: Path | None = None) -> None:
    """Replace `path` with `text` through a rename from the same directory, or from
    `scratch_dir` (on the same file system) where a watcher of the directory is to see the
    rename alone."""
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = (scratch_dir or path.parent) / f".{path.name}.tmp"
    scratch.write_text(text)
    scratch.replace(path)


def point_link(link: Path, target: str, scratch_name: str) -> None:
    """Make `link` a symlink to `target` by renaming a scratch link over it, so `link` never
    disappears, not even for an instant."""
    scratch = link.with_name(scratch_name)
    scratch.unlink(missing_ok=True)
    os.symlink(target, scratch)
    scratch.replace(link)
    fd = os.open(link.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
