"""The manifest of an unpacked source: every entry with its kind and content digest, so
copying can place files from a content-addressed store without reading them twice."""

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _string
from pathlib import Path

from activities.adapters.beat import Beat

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One path in the source tree, relative and with '/' separators."""

    path: str
    kind: str  # "dir", "file" or "link"
    digest: str = ""
    size: int = 0
    target: str = ""


def file_digest(path: Path) -> str:
    """sha256 of a file's content; a link put in its place is refused, not followed."""
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan(root: Path, beat: Beat) -> list[Entry]:
    """Walk `root` in a stable order and describe every entry."""
    entries: list[Entry] = []
    for current, dirs, files in os.walk(root):
        beat.check()
        dirs.sort()
        base = Path(current)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries.append(Entry(rel, "link", target=os.readlink(path)))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(Entry(rel, "dir"))
            else:
                entries.append(Entry(rel, "file", file_digest(path), info.st_size))
    entries.sort(key=lambda e: e.path)
    return entries


def _as_text(e: Entry) -> str:
    """One entry as `json.dumps` of its fields writes it without spaces, made directly: a
    source of 10,000 files is described at every deployment."""
    return (
        f'{{"path":{_string(e.path)},"kind":{_string(e.kind)},"digest":{_string(e.digest)},'
        f'"size":{int(e.size)},"target":{_string(e.target)}}}'
    )


def save(entries: list[Entry], path: Path) -> str:
    """Write the manifest and return its digest, which identifies the source's content."""
    data = f"[{','.join(_as_text(entry) for entry in entries)}]".encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load(path: Path) -> list[Entry]:
    """Read a manifest written by `save`."""
    return [Entry(**item) for item in json.loads(path.read_bytes())]
