"""The `slipway` command line.

With SLIPWAY_API_URL (and SLIPWAY_API_TOKEN) set, the commands that work from another
machine ask that Slipway API (`starter.remote`); without it, this machine's database and
Temporal (`starter.local`). Both answer the same questions (`starter.backend`), and the
commands draw the answers through the same renderers. What a command needs is imported when
it runs (`starter.cli.common` says how), so `slipway --help` and the remote CLI start without
loading the server's modules.
"""

import os
import sys

from slipway import tracing
from starter.cli import deployments, env, lifecycle, projects, server
from starter.cli.common import app, say_error
from starter.outages import unreachable

__all__ = ["app", "deployments", "env", "lifecycle", "main", "projects", "server"]


def main() -> None:
    """`slipway`: the commands, with a component that does not answer said in one line
    naming it and what to do (exit status 3), wherever in a command it is found."""
    try:
        app()
    except SystemExit as done:
        _end(done.code)
    except Exception as err:
        outage = unreachable(err)
        if outage is None:
            raise
        say_error(str(outage))
        _end(outage.code)
    _end(0)


def _end(code: object) -> None:
    """Exit with `code` once the output and any spans are out, without the interpreter's
    finalization: a Temporal client's runtime keeps native threads that can abort a
    finalizing interpreter (SIGABRT instead of the command's exit status)."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
    flush = getattr(tracing.provider(), "shutdown", None)
    if callable(flush):
        flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))
