"""Which container serves an app's slot: a file per project and slot (`current`, `next`)
holding the container's `host:port`, which the static server (Caddy) reads on every request
it proxies (see `slipway.static_server`). An app redeploy rewrites one of these files, never
Traefik's route nor Caddy's configuration: a project's route to Caddy stays the same from
one deployment to the next, so Traefik, which parses every route again on each change, does
no work whatever the number of projects. Caddy's configuration changes only when a project
serves an app for the first time, to gain the project's two routes to these files.

For a base name the shared route serves (see `activities.adapters.traefik`), a slot's file
is also what tells Caddy the slot serves an app: a static release that takes a slot removes
its file (recorded, like any write, so a failed deployment puts it back).

Each file is replaced whole by a rename, so a request reads the old address or the new one,
never a part. Every file is Slipway's own, under the home: a link found in its place is
refused rather than followed.
"""

import json
import os
from pathlib import Path

from activities.adapters.caddy import load_rules
from slipway.layout import Layout
from slipway.settings import Settings

LOADED = ".loaded"
"""Marks a project whose routes to its upstream files the running Caddy has: written after
its configuration was loaded, so a failed load is tried again by the next write."""

_LONGEST = 300
"""More than any `host:port` Slipway writes (a container name is a DNS label)."""


class UpstreamError(RuntimeError):
    """An upstream file or its directory is not Slipway's own (a link, or not a file)."""


def address_of(url: str) -> str:
    """The `host:port` of a container's URL (`http://host:port`)."""
    return url.split("://", 1)[-1].rstrip("/")


def _directory(layout: Layout, project: str) -> Path:
    """The project's directory of upstream files, made if absent; never a link."""
    path = layout.upstream(project, "current").parent
    for place in (layout.upstreams, path):
        place.mkdir(mode=0o755, parents=True, exist_ok=True)
        if place.is_symlink() or not place.is_dir():
            raise UpstreamError(f"{place} is not a directory of Slipway's own")
    return path


def read_upstream(layout: Layout, project: str, slot: str) -> str | None:
    """The `host:port` the project's `slot` proxies to, or None without one."""
    path = layout.upstream(project, slot)
    if path.parent.is_symlink():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise UpstreamError(f"{path} is not a file of Slipway's own: {err}") from None
    try:
        return os.read(fd, _LONGEST).decode().strip() or None
    finally:
        os.close(fd)


def _replace(path: Path, address: str | None) -> None:
    """Put `address` in `path` (None: remove it) through a rename from a scratch file made
    afresh beside it, so Caddy reads the old or the new address."""
    if address is None:
        path.unlink(missing_ok=True)
        return
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, address.encode())
    finally:
        os.close(fd)
    os.replace(scratch, path)


def routed(settings: Settings, project: str) -> None:
    """Make sure the running Caddy has the project's routes to its upstream files.

    Idempotent: Caddy's configuration derives from the directories on disk, and once it is
    loaded, the mark says so and nothing is loaded again."""
    directory = _directory(settings.layout, project)
    mark = directory / LOADED
    if mark.is_file() and not mark.is_symlink():
        return
    load_rules(settings)
    _replace(mark, "")


def _record(layout: Layout, deployment_id: str, slot: str) -> Path:
    return layout.work(deployment_id) / f"upstream-{slot}.json"


def write_upstream(
    settings: Settings,
    project: str,
    slot: str,
    address: str | None,
    deployment_id: str | None = None,
) -> str | None:
    """Point the project's `slot` at the container at `address` (`host:port`; None: at no
    container, the slot serving a static release); returns what the slot held before (None:
    nothing). With `deployment_id`, what it held before is recorded in the deployment's work
    dir at the first write, so that a retry returns the same, and `restore_upstreams` can
    put it back.

    Idempotent: the record is written once, and an unchanged file is not rewritten."""
    layout = settings.layout
    path = layout.upstream(project, slot)
    if address is None and not path.parent.is_dir():
        return None
    if address is not None:
        routed(settings, project)
    now = read_upstream(layout, project, slot)
    before = now
    if deployment_id is not None:
        record = _record(layout, deployment_id, slot)
        if record.is_file():
            before = json.loads(record.read_text())["previous"]
        else:
            record.parent.mkdir(parents=True, exist_ok=True)
            _replace(record, json.dumps({"previous": now, "written": address}))
    if now != address:
        _replace(path, address)
    return before


def restore_upstreams(layout: Layout, project: str, deployment_id: str) -> None:
    """Put each slot the deployment pointed back to what it held before, while it still
    holds what the deployment wrote (a later write is left alone).

    Idempotent: it acts on the records alone, and a slot already put back no longer holds
    the deployment's address."""
    for slot in ("next", "current"):
        record = _record(layout, deployment_id, slot)
        if not record.is_file():
            continue
        kept = json.loads(record.read_text())
        if read_upstream(layout, project, slot) == kept["written"]:
            _replace(layout.upstream(project, slot), kept["previous"])
