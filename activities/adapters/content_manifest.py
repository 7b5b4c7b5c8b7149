"""A content manifest: a tree described entry by entry (relative path, kind, size, mode, the
sha256 of each file's content, the target of each link), so that a client sends only the
contents the server lacks and the tree is built from the blob store.

The same rules hold whichever road a manifest takes: the API checks one before it stores
it, and pulling_source checks the stored bytes again before it builds anything, because an
upload can reach the store some other way. Paths must be canonical (no empty, '.' or '..'
segment, not absolute, no control character or backslash), each path is one thing, nothing
lies under a file or a link, links stay inside the final tree, and the declared sizes are
held to an archive's limits (the blobs are held to the sizes when the tree is built).
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _string
from operator import attrgetter

from activities.adapters.links import LinkError, check_all
from slipway.limits import LimitError, UnpackLimits

FORMAT = "slipway-manifest/1"
HEAD = b'{"format":"slipway-manifest/1","entries":['
"""How a stored manifest begins: unpacking tells it from an archive by this."""

DIGEST = re.compile(r"[0-9a-f]{64}")
"""A blob's name: the sha256 of its content, in lowercase hex."""

EXECUTABLE, REGULAR = 0o755, 0o644
"""The only modes a file is given, as when an archive is unpacked: executable or not."""

_BAD_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_NAME_MAX = 255
_FIELDS = {
    "dir": {"path", "kind"},
    "file": {"path", "kind", "size", "mode", "sha256"},
    "link": {"path", "kind", "target"},
}


_PATH = attrgetter("path")


class ManifestError(ValueError):
    """The manifest describes a tree Slipway will not build; the message names the entry."""


@dataclass(frozen=True)
class Item:
    """One entry: a directory, a file (its content named by `sha256`) or a link."""

    path: str
    kind: str
    size: int = 0
    mode: int = REGULAR
    sha256: str = ""
    target: str = ""


def file_mode(mode: int) -> int:
    """The mode a file is given: executable if any execute bit is set, else not."""
    return EXECUTABLE if mode & 0o111 else REGULAR


def _utf8(text: str, what: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ManifestError(f"{what} {text!r} is not valid UTF-8") from None


def check_path(path: str, limits: UnpackLimits) -> None:
    """Refuse a path that is not canonical, could leave the tree, or is over the limits."""
    try:
        length = len(path.encode())
    except UnicodeEncodeError:
        raise ManifestError(f"the path {path!r} is not valid UTF-8") from None
    if _BAD_CHARACTERS.search(path):
        raise ManifestError(f"entry {path!r} has a control character or a backslash in its name")
    if path.startswith("/") or _DRIVE.match(path):
        raise ManifestError(f"entry {path!r} has an absolute path")
    parts = path.split("/")
    if ".." in parts:
        raise ManifestError(f"entry {path!r} climbs out of the upload with '..'")
    if "" in parts or "." in parts:
        raise ManifestError(f"entry {path!r} is not canonical: no empty or '.' segment")
    # Only a path longer than a name may be can hold a name too long.
    if length > _NAME_MAX and any(len(part.encode()) > _NAME_MAX for part in parts):
        raise ManifestError(f"entry {path[:60]!r}... has a name over {_NAME_MAX} bytes")
    limits.path(path)


def check(items: Iterable[Item], limits: UnpackLimits) -> None:
    """Refuse the tree unless every entry is valid where it stands and together they form
    a tree within the limits whose links stay inside it."""
    try:
        _check(list(items), limits)
    except (LimitError, LinkError) as err:
        raise ManifestError(str(err)) from None


def _check(items: list[Item], limits: UnpackLimits) -> None:
    kinds: dict[str, str] = {}
    for item in items:
        check_path(item.path, limits)
        if item.path in kinds:
            raise ManifestError(f"entry {item.path!r} appears twice")
        kinds[item.path] = item.kind
    implicit: set[str] = set()
    sizes: dict[str, int] = {}
    total = 0
    for item in items:
        parent = item.path.rpartition("/")[0]
        while parent and parent not in implicit:
            above = kinds.get(parent)
            if above is None:
                implicit.add(parent)
            elif above != "dir":
                raise ManifestError(
                    f"entry {item.path!r} lies under {parent!r}, which is a {above}"
                )
            else:
                break
            parent = parent.rpartition("/")[0]
        if item.kind == "file":
            if sizes.setdefault(item.sha256, item.size) != item.size:
                raise ManifestError(
                    f"entry {item.path!r} says its content {item.sha256} has {item.size} bytes; "
                    f"another entry says {sizes[item.sha256]}"
                )
            limits.file(item.path, item.size)
            total += item.size
            limits.total(total)
    limits.count(len(kinds) + len(implicit))
    links = {item.path: item.target for item in items if item.kind == "link"}
    for name, target in links.items():
        _utf8(target, f"the target of {name!r}")
        if len(target.encode()) > limits.max_path_length:
            raise ManifestError(f"the link {name!r} has an oversized target")
    check_all(links)


def item(raw: object) -> Item:
    """One stored entry, its fields checked for its kind (the tree is judged by `check`)."""
    if type(raw) is not dict or type(path := raw.get("path")) is not str:
        raise ManifestError("an entry is not an object with a path")
    kind = raw.get("kind")
    fields = _FIELDS.get(kind) if type(kind) is str else None
    if fields is None:
        raise ManifestError(f"entry {path!r} is a {kind!r}: only file, dir and link are kept")
    if raw.keys() != fields:
        raise ManifestError(f"entry {path!r} has the fields {sorted(raw)}, not those of a {kind}")
    if kind == "file":
        size, mode, digest = raw["size"], raw["mode"], raw["sha256"]
        if (
            type(size) is not int
            or type(mode) is not int
            or not (0 <= size <= 2**63 - 1 and 0 <= mode <= 0o7777)
        ):
            raise ManifestError(f"entry {path!r} has an invalid size or mode")
        if type(digest) is not str or not DIGEST.fullmatch(digest):
            raise ManifestError(f"entry {path!r} has no sha256 of 64 lowercase hex digits")
        return Item(path, "file", size, EXECUTABLE if mode & 0o111 else REGULAR, digest)
    if kind == "dir":
        return Item(path, "dir")
    target = raw["target"]
    if type(target) is not str or not target or "\0" in target:
        raise ManifestError(f"the link {path!r} has an empty or invalid target")
    return Item(path, "link", target=target)


def as_json(entry: Item) -> dict[str, object]:
    """An entry as the manifest holds it, and as a client sends it: the fields of its kind."""
    if entry.kind == "file":
        return {
            "path": entry.path,
            "kind": entry.kind,
            "size": entry.size,
            "mode": file_mode(entry.mode),
            "sha256": entry.sha256,
        }
    if entry.kind == "link":
        return {"path": entry.path, "kind": entry.kind, "target": entry.target}
    return {"path": entry.path, "kind": entry.kind}


def _as_text(entry: Item) -> str:
    """`as_json(entry)` as `json.dumps` writes it without spaces, made directly: a manifest
    of 10,000 entries is written at every upload."""
    path = _string(entry.path)
    if entry.kind == "file":
        digest = _string(entry.sha256)
        return (
            f'{{"path":{path},"kind":"file","size":{int(entry.size)},'
            f'"mode":{file_mode(entry.mode)},"sha256":{digest}}}'
        )
    if entry.kind == "link":
        return f'{{"path":{path},"kind":"link","target":{_string(entry.target)}}}'
    return f'{{"path":{path},"kind":{_string(entry.kind)}}}'


def canonical(items: Iterable[Item]) -> bytes:
    """The manifest as stored: entries sorted by path, fixed fields, no spaces (as
    `json.dumps` of `{"format": FORMAT, "entries": [as_json(entry), ...]}` with compact
    separators writes it). Its sha256 is the upload's id, so the same tree is the same
    upload whoever describes it."""
    entries = ",".join(_as_text(entry) for entry in sorted(items, key=_PATH))
    return f'{{"format":{_string(FORMAT)},"entries":[{entries}]}}'.encode()


def digests(data: bytes) -> set[str]:
    """The contents a stored manifest refers to, read leniently: cleanup keeps what any
    manifest names, valid or not (one that is not JSON names nothing)."""
    try:
        document = json.loads(data)
        entries = document["entries"] if isinstance(document, dict) else []
    except (ValueError, KeyError):
        return set()
    if not isinstance(entries, list):
        return set()
    return {
        entry["sha256"]
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def largest(limits: UnpackLimits) -> int:
    """The most bytes a manifest within the limits can take: a larger file is refused
    before it is read."""
    return limits.max_files * (limits.max_path_length * 2 + 256) + 1024


def parse(data: bytes, limits: UnpackLimits) -> list[Item]:
    """The entries of a stored manifest, checked as the API checked them."""
    try:
        document = json.loads(data)
    except ValueError:
        raise ManifestError("the manifest is not JSON") from None
    if (
        not isinstance(document, dict)
        or set(document) != {"format", "entries"}
        or document["format"] != FORMAT
        or not isinstance(document["entries"], list)
    ):
        raise ManifestError(f"the upload is not a manifest of the format {FORMAT}")
    items = [item(raw) for raw in document["entries"]]
    check(items, limits)
    return items
