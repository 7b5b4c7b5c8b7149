"""What the `slipway` commands share: the app and its groups, how a command reaches its
server and fails, and the arguments several take.

With SLIPWAY_API_URL (and SLIPWAY_API_TOKEN) set, the commands that work from another
machine ask that Slipway API (`starter.remote`); without it, this machine's database and
Temporal (`starter.local`). Both answer the same questions (`starter.backend`), and the
commands draw the answers through the same renderers. What a command needs is imported when
it runs: the server's modules by the commands that run on the server, the models (pydantic)
and the HTTP client by those that reach a server, so `slipway --help` and the remote CLI
start without loading what they do not use (tests/test_cli_imports.py holds it to that).
"""

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.markup import escape

from slipway.names import InvalidNameError, validate_preview_name, validate_project_name
from slipway.phases import Status
from starter import render
from starter.backend import FAILED, OK, URL_VARIABLE, USAGE, Backend, Refusal

T = TypeVar("T")

EXIT_CODES = (
    "Exit status: 0 done; 1 the deployment failed or the operation was refused; 2 bad usage, "
    "or what it names is not found; 3 PostgreSQL, Temporal or the API does not answer."
)

app = typer.Typer(no_args_is_help=True, help=f"Durable deployments on Temporal.\n\n{EXIT_CODES}")


def _version(given: bool) -> None:
    if given:
        from importlib.metadata import version

        print(f"slipway {version('slipway')}")
        raise typer.Exit(OK)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Durable deployments on Temporal."""


db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
app.add_typer(db_app, name="db")
project_app = typer.Typer(no_args_is_help=True, help="A project's source and settings.")
app.add_typer(project_app, name="project")
domains_app = typer.Typer(no_args_is_help=True, help="A project's own domains and their TLS.")
app.add_typer(domains_app, name="domains")
previews_app = typer.Typer(
    no_args_is_help=True, help="A project's previews (`ls --previews` lists them)."
)
app.add_typer(previews_app, name="previews")
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


def say_error(message: str) -> None:
    """`error: message` on standard error, one line however narrow the terminal."""
    render.errors.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)


def fail(message: str, code: int = USAGE) -> typer.Exit:
    say_error(message)
    return typer.Exit(code)


def backend_of() -> Backend:
    """The API the environment names, else this machine's server."""
    if os.environ.get(URL_VARIABLE):
        from starter.remote import Remote

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


def preview_of(project: str, name: str) -> str:
    """A preview's name, if `<name>--<project>` is a DNS label."""
    try:
        return validate_preview_name(name, project)
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
    try:
        lines = env_file.read_text().splitlines() if env_file else []
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not text"
        raise fail(f"cannot read --env-file {env_file}: {reason}") from None
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
    """Draw the deployment's live progress until it ends; OK if it went active, else
    FAILED."""
    view = await render.show_progress(backend.progress(deployment_id), backend.eta)
    if view is None or view.status is not Status.ACTIVE:
        error = view.details.error if view else "no record of the deployment"
        ended = view.status.value if view else "failed"
        render.errors.print(
            f"[red]✗ deployment {ended}:[/] {escape(error or '')}", soft_wrap=True, highlight=False
        )
        return FAILED
    render.console.print(f"[green]✓ active[/] {view.details.url or ''}")
    render.console.print(
        f"  Temporal UI: {await backend.temporal_url(deployment_id)}", soft_wrap=True
    )
    return OK


NOTE_AFTER = 25
"""Looks (0.2 s apart) before saying that the resumed run has not started yet."""


async def next_round(backend: Backend, deployment_id: str, last: int) -> None:
    """Wait until the resumed run has recorded its first step (its round, past `last`, is in
    the row): until then the row still says how the last run ended, and following it would
    report that end as the new run's. The run may wait behind its project's other
    deployments, so this waits as long as it takes (Ctrl-C stops only the waiting)."""
    looks = 0
    while True:
        view = await backend.status(deployment_id)
        if view is not None and (view.details.round or 0) > last:
            return
        looks += 1
        if looks == NOTE_AFTER:
            render.errors.print(
                "waiting for the resumed run to start (its project may be busy with another "
                "deployment)",
                soft_wrap=True,
            )
        await asyncio.sleep(0.2)
