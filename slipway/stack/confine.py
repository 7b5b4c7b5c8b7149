"""The static server in a mount namespace of its own, where `sites` is mounted `nosymfollow`:
no link under it is followed, whoever planted it. Only the links in `slots` (Slipway's own
`current` and `next`) lead into `sites`, so a release serves its own files and nothing else,
whatever its uploads or anything else put in it."""

import os
import shutil
from pathlib import Path

from slipway.stack.process import ServiceError

_SCRIPT = 'mount --bind "$1" "$1" && mount -o remount,bind,nosymfollow "$1" && shift && exec "$@"'
"""Runs inside the new namespace: the bind mount and its flag never reach the host's view."""


def no_links_under(directory: Path, argv: list[str]) -> list[str]:
    """`argv` run with no link under `directory` followed (Linux 5.10 or newer, util-linux;
    as a normal user, through a user namespace)."""
    unshare, mount = shutil.which("unshare"), shutil.which("mount")
    if unshare is None or mount is None:
        raise ServiceError(
            "unshare and mount (util-linux) are needed to serve releases without following "
            "links: apt-get install util-linux mount"
        )
    directory.mkdir(parents=True, exist_ok=True)
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags.append("--map-root-user")
    return [unshare, *flags, "--", "/bin/sh", "-c", _SCRIPT, "sh", str(directory), *argv]
