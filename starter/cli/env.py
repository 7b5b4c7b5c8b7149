"""The commands about a project's environment variables: set, unset, ls and import. Each
change is a new version, used by the project's next deployment (at once with --redeploy);
each works on the server and, through the API, from another machine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from slipway.environment import EnvError, pairs
from starter import render
from starter.backend import Backend
from starter.cli.common import JsonOption, env_app, fail, project_name, run

if TYPE_CHECKING:
    # Types only: the remote CLI runs these without loading the database's modules.
    from starter.project_env import EnvChange

Project = Annotated[str, typer.Argument(help="Project name.")]
Redeploy = Annotated[
    bool,
    typer.Option(
        "--redeploy",
        help="Start a deployment with the new version now: the serving release again, "
        "without rebuilding (else the next deployment uses it).",
    ),
]


def _shown(change: EnvChange) -> None:
    """Print what the change made; a redeploy that could not start fails the command."""
    render.console.print(render.env_changed(change), markup=False, soft_wrap=True)
    if change.redeploy_error is not None:
        raise fail(f"not redeployed: {change.redeploy_error}", 1)


@env_app.command("set")
def env_set(
    project: Project,
    assignments: Annotated[
        list[str], typer.Argument(help="NAME=VALUE, one or more; the values are sealed.")
    ],
    redeploy: Redeploy = False,
) -> None:
    """Set variables of PROJECT as a new version of its environment."""
    wanted = project_name(project)
    try:
        values = pairs(assignments)
    except EnvError as err:
        raise fail(str(err)) from None
    _shown(run(lambda backend: backend.env_change(wanted, values, [], redeploy)))


@env_app.command("unset")
def env_unset(
    project: Project,
    names: Annotated[list[str], typer.Argument(help="Names of the variables to remove.")],
    redeploy: Redeploy = False,
) -> None:
    """Remove variables of PROJECT as a new version of its environment."""
    wanted = project_name(project)
    _shown(run(lambda backend: backend.env_change(wanted, {}, names, redeploy)))


@env_app.command("ls")
def env_ls(project: Project, json: JsonOption = False) -> None:
    """PROJECT's variables in its current version, values masked (the first 2 characters
    of a value of 12 or more, else none)."""
    wanted = project_name(project)
    listing = run(lambda backend: backend.env_list(wanted))
    if json:
        print(listing.model_dump_json(by_alias=True, indent=2))
    else:
        render.console.print(render.env_table(listing))


@env_app.command("import")
def env_import(
    project: Project,
    file: Annotated[
        Path,
        typer.Argument(
            help="A .env file: NAME=VALUE lines, `export ` allowed, # comments, quoted values."
        ),
    ],
    redeploy: Redeploy = False,
) -> None:
    """Set every variable of FILE on PROJECT as a new version (variables it does not name
    stay as they are); a line that cannot be read is named by its number."""
    wanted = project_name(project)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise fail(str(err)) from None

    async def work(backend: Backend) -> EnvChange:
        return await backend.env_import(wanted, text, redeploy)

    _shown(run(work))
