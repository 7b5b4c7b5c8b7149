"""The commands that stop, start, restart and delete a project; each works on the server and,
through the API, from another machine, and prints what was done once it is done."""

import sys
from typing import Annotated

import typer

from starter import render
from starter.backend import Backend
from starter.cli.common import app, fail, project_name, run

ProjectArgument = Annotated[str, typer.Argument(help="Project name.")]


def _change(project: str, action: str, cancel: bool = False) -> None:
    """Carry out `action` (a `LifecycleAction`'s value) on the project; the models are loaded
    only here, when a server is asked."""
    from slipway.models import LifecycleAction

    name = project_name(project)

    async def work(backend: Backend) -> str:
        done = await backend.lifecycle(name, LifecycleAction(action), cancel)
        return f"{done.project}: {done.message} ({done.state})"

    render.console.print(run(work), soft_wrap=True)


@app.command()
def stop(project: ProjectArgument) -> None:
    """Stop PROJECT: its route answers 503 (header X-Slipway-State: stopped), an app's
    container stops, and the monitor neither restarts nor alerts on it. A new deployment
    starts it again."""
    _change(project, "stop")


@app.command()
def start(project: ProjectArgument) -> None:
    """Start a stopped PROJECT: an app's container is proven healthy, then routed again."""
    _change(project, "start")


@app.command()
def restart(project: ProjectArgument) -> None:
    """Restart PROJECT without a failed request: a new container of the same release is proven
    healthy before the old one goes. A static site has nothing to restart: its route is
    rendered again."""
    _change(project, "restart")


@app.command()
def delete(
    project: ProjectArgument,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; required when not on a terminal.")
    ] = False,
    cancel: Annotated[
        bool,
        typer.Option(
            help="Cancel the project's deployments queued or under way (and wait for them) "
            "instead of refusing."
        ),
    ] = False,
) -> None:
    """Delete PROJECT and everything of it: routes, containers, images, releases, uploads,
    git mirror, and its deployments, logs, domains, settings, alerts and history. It cannot
    be undone."""
    name = project_name(project)
    if not yes:
        if not sys.stdin.isatty():
            raise fail(f"deleting {name} cannot be undone: confirm with --yes")
        if not typer.confirm(f"Delete {name} and everything of it? This cannot be undone"):
            raise fail("nothing deleted", 1)
    _change(name, "delete", cancel)
