"""What the `slipway` commands share: the app and its groups, how a command reaches its
server and fails, and the arguments several take.

With SLIPWAY_API_URL (and SLIPWAY_API_TOKEN) set, the commands that work from another
machine ask that Slipway API (`starter.remote`); without it, this machine's database and
Temporal (`starter.local`). Both answer the same questions (`starter.backend`), and the
commands draw the answers through the same renderers. Server-side modules are imported by
the commands that run on the server, so the remote CLI starts without loading them.
"""

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from slipway.names import InvalidNameError, validate_project_name
from slipway.phases import Status
from starter import render
from starter.backend import Backend, Refusal
from starter.remote import URL_VARIABLE, Remote

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="Durable deployments on Temporal.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
app.add_typer(db_app, name="db")
project_app = typer.Typer(no_args_is_help=True, help="A project's source and settings.")
app.add_typer(project_app, name="project")
domains_app = typer.Typer(no_args_is_help=True, help="A project's own domains and their TLS.")
app.add_typer(domains_app, name="domains")
env_app = typer.Typer(
    no_args_is_help=True,
    help="A project's environment variables: sealed, versioned, used by its next deployment.",
)
app.add_typer(env_app, name="env")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WaitOption = Annotated[bool, typer.Option(help="Show live progress until it ends.")]
IdArgument = Annotated[
    str, typer.Argument(help="A deployment id, or its first 8 or more characters.")
]


def fail(message: str, code: int = 2) -> typer.Exit:
    render.errors.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def backend_of() -> Backend:
    """The API the environment names, else this machine's server."""
    remote = Remote.configured(os.environ)
    if remote is not None:
        return remote
    from starter.local import Local

    return Local()


def run(work: Callable[[Backend], Awaitable[T]], backend: Backend | None = None) -> T:
    """Run `work` against the server; a refusal becomes its message and exit code, not a
    traceback."""

    async def main() -> T:
        async with backend or backend_of() as server:
            return await work(server)

    try:
        return asyncio.run(main())
    except Refusal as err:
        raise fail(str(err), err.code) from None


def on_server(command: str) -> None:
    """Refuse a command the API does not serve when the CLI is remote."""
    if os.environ.get(URL_VARIABLE):
        raise fail(
            f"`slipway {command}` works on the server only (the API does not serve it): "
            f"run it there, without {URL_VARIABLE}"
        )


def project_name(name: str) -> str:
    try:
        return validate_project_name(name)
    except InvalidNameError as err:
        raise fail(str(err)) from None


def parse_duration(text: str) -> timedelta:
    found = re.fullmatch(r"(\d+)([smhd])", text)
    if not found:
        raise fail(f"invalid duration {text!r}: use a number and s, m, h or d, e.g. 5m")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[found.group(2)]
    try:
        return timedelta(**{unit: int(found.group(1))})
    except OverflowError:
        raise fail(f"invalid duration {text!r}: too long") from None


def environment(pairs: list[str], env_file: Path | None) -> dict[str, str]:
    """KEY=VALUE pairs, after those of an env file (one per line, # comments)."""
    lines = env_file.read_text().splitlines() if env_file else []
    values: dict[str, str] = {}
    for line in [*lines, *pairs]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise fail(f"invalid environment entry {line.split('=')[0]!r}: use NAME=VALUE")
        values[name.strip()] = value
    return values


async def waited(backend: Backend, deployment_id: str) -> int:
    """Draw the deployment's live progress until it ends; 0 if it went active, else 1."""
    view = await render.show_progress(backend.progress(deployment_id), backend.eta)
    if view is None or view.status is not Status.ACTIVE:
        error = view.details.error if view else "no record of the deployment"
        render.errors.print(f"[red]✗ deployment failed:[/] {error}")
        return 1
    render.console.print(f"[green]✓ active[/] {view.details.url or ''}")
    render.console.print(
        f"  Temporal UI: {await backend.temporal_url(deployment_id)}", soft_wrap=True
    )
    return 0


RESUME_LOOKS = 150
"""Looks, 0.2 s apart, for a resumed run's first step."""


async def next_round(backend: Backend, deployment_id: str, last: int) -> None:
    """Wait until the resumed run has recorded its first step (its round, past `last`, is in
    the row): until then the row still says how the last run ended."""
    for _ in range(RESUME_LOOKS):
        view = await backend.status(deployment_id)
        if view is not None and (view.details.round or 0) > last:
            return
        await asyncio.sleep(0.2)
