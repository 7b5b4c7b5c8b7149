"""The `slipway` command line.

With SLIPWAY_API_URL (and SLIPWAY_API_TOKEN) set, the commands that work from another
machine ask that Slipway API (`starter.remote`); without it, this machine's database and
Temporal (`starter.local`). Both answer the same questions (`starter.backend`), and the
commands draw the answers through the same renderers. Server-side modules are imported by
the commands that run on the server, so the remote CLI starts without loading them.
"""

from starter.cli import deployments, lifecycle, projects, server
from starter.cli.common import app

__all__ = ["app", "deployments", "lifecycle", "projects", "server"]
