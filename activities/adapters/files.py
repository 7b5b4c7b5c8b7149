"""Replacing files and links so a reader sees the old or the new one, never a part or a gap."""

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` through a rename in the same directory."""
    scratch = path.with_name(f".{path.name}.tmp")
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
