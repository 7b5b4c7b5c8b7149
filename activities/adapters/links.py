"""Where a link in an uploaded tree leads, judged against the whole final tree.

A link's target can look inside when it is checked and leave the tree once a later entry
exists (`x -> s/s/../..`, then `s -> .`). So links are judged only once every entry is
known, by resolving each through every other link exactly as the kernel would, and refused
if any step climbs above the root, names an absolute path, or loops.
"""

from collections import defaultdict
from collections.abc import Mapping

from activities.adapters.manifest import Entry
from slipway.limits import UnpackLimits

MAX_HOPS = 40
"""Links followed while resolving one path, as Linux allows."""


class LinkError(ValueError):
    """A link leaves the tree or cannot be resolved; the message names it."""


def resolve(name: str, links: Mapping[str, str]) -> str:
    """The path inside the tree that the link `name` leads to (it need not exist), or
    LinkError. `links` maps every link of the final tree to its target."""
    resolved = name.split("/")[:-1]
    pending = _parts(name, links[name])
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if not resolved:
                raise LinkError(f"the link {name!r} leads outside the upload ({links[name]!r})")
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        target = links.get(candidate)
        if target is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_HOPS:
            raise LinkError(f"the link {name!r} is part of a loop of links")
        pending = _parts(candidate, target) + pending
    return "/".join(resolved)


def _parts(name: str, target: str) -> list[str]:
    if target.startswith("/"):
        raise LinkError(f"the link {name!r} points to the absolute path {target!r}")
    if not target or "\0" in target:
        raise LinkError(f"the link {name!r} has an empty or invalid target")
    return [part for part in target.split("/") if part not in ("", ".")]


def check_all(links: Mapping[str, str]) -> None:
    """Refuse the tree if any of its links leaves it."""
    for name in sorted(links):
        resolve(name, links)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class _Flattening:
    """A static release's entries with every link replaced by what it leads to."""

    def __init__(self, entries: list[Entry], limits: UnpackLimits) -> None:
        self.by_path = {e.path: e for e in entries}
        self.by_path[""] = Entry("", "dir")
        self.links = {e.path: e.target for e in entries if e.kind == "link"}
        self.children: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            self.children[_parent(entry.path)].append(entry)
        self.limits = limits
        self.placed: list[tuple[str, Entry]] = []

    def target(self, entry: Entry) -> Entry | None:
        """What a link leads to in the upload, following links; None when nothing is there."""
        found = self.by_path.get(resolve(entry.path, self.links))
        return self.target(found) if found is not None and found.kind == "link" else found

    def place(self, path: str, entry: Entry, holding: tuple[str, ...]) -> None:
        """Put `entry` at `path` in the release; `holding` names the upload's directories
        being placed around it, to refuse a link back into one of them."""
        if entry.kind == "link":
            found = self.target(entry)
            if found is not None:
                self.place(path, found, holding)
            return
        if path:
            self.limits.path(path)
        self.limits.count(len(self.placed) + 1)
        if entry.kind != "dir":
            self.placed.append((path, entry))
            return
        if entry.path in holding:
            raise LinkError(
                f"a link at {path!r} leads back into {entry.path or '.'!r}, which holds it"
            )
        if path:
            self.placed.append((path, entry))
        for child in self.children[entry.path]:
            name = child.path.rpartition("/")[2]
            self.place(f"{path}/{name}" if path else name, child, (*holding, entry.path))


def flatten(entries: list[Entry], site_root: str, limits: UnpackLimits) -> list[tuple[str, Entry]]:
    """The entries of a static release made from the upload's `site_root`: (path in the
    release, the upload's entry that gives its content), in an order where a directory
    comes before what it holds. Every link becomes a copy of what it leads to, so a release
    holds no link at all and the static server can refuse every link; a link to nothing is
    left out; a link into a directory that holds it is refused (it would never end). Every
    path, links expanded, is held to the upload's limits."""
    flattening = _Flattening(entries, limits)
    root = flattening.by_path.get(site_root)
    if root is None:
        return []
    flattening.place("", root, ())
    return flattening.placed
