"""The commands about deployments: deploy, status, logs, ls, stuck, cancel, resume and
rollback; each works on the server and, through the API, from another machine."""

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from slipway.models import GitSource
from slipway.phases import Status
from starter import render
from starter.backend import Backend, Refusal
from starter.cli.common import (
    IdArgument,
    JsonOption,
    WaitOption,
    app,
    environment,
    fail,
    next_round,
    parse_duration,
    project_name,
    run,
    waited,
)


@app.command()
def deploy(
    path: Annotated[
        Path | None, typer.Argument(help="A directory, .tar.gz or .zip to deploy.")
    ] = None,
    project: Annotated[str, typer.Option(help="Project name (a DNS label).")] = "",
    git: Annotated[
        str | None, typer.Option("--git", help="Deploy this repository instead of a path.")
    ] = None,
    ref: Annotated[
        str | None, typer.Option(help="With --git: a branch, tag or commit (default: HEAD).")
    ] = None,
    wait: WaitOption = False,
    commit: Annotated[str | None, typer.Option(help="Source commit, recorded.")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="NAME=VALUE for an app's container, over the project's environment, for "
            "this deployment only (repeatable); sealed.",
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(help="A file of NAME=VALUE lines, as --env: this deployment only."),
    ] = None,
) -> None:
    """Deploy PATH, a repository (--git URL [--ref REF]) or, with neither, the project's own
    repository at its branch, to PROJECT; prints the deployment id. Remotely, a directory's
    files are sent only when the server lacks their content."""
    if not project:
        raise fail("give the project: --project NAME")
    if path is not None and git is not None:
        raise fail("give a PATH or --git URL, not both")
    if ref is not None and git is None:
        raise fail("--ref goes with --git URL")
    values = environment(env or [], env_file)
    source = GitSource(url=git, ref=ref) if git is not None else None

    async def work(backend: Backend) -> int:
        if path is not None:
            deployment_id = await backend.deploy(path, project, commit, values)
        else:
            deployment_id = await backend.deploy_git(project, source, commit, values)
        render.console.print(deployment_id, soft_wrap=True)
        return await waited(backend, deployment_id) if wait else 0

    raise typer.Exit(run(work))


@app.command()
def status(deployment_id: IdArgument, json: JsonOption = False) -> None:
    """A deployment's status, phase, progress and metadata."""

    async def work(backend: Backend) -> None:
        resolved = await backend.resolve(deployment_id)
        view = await backend.status(resolved)
        if view is None:
            raise Refusal(f"no deployment {resolved} is recorded (yet)", 1)
        if json:
            print(render.status_json(view))
            return
        render.console.print(render.status_table(view))
        health = await backend.health(view.project)
        render.console.print(f"[bold]project health[/] {health.status} {health.detail}")

    run(work)


@app.command()
def logs(
    target: Annotated[
        str,
        typer.Argument(
            help="A deployment id (or its first 8 or more characters); with --app, a project."
        ),
    ],
    app_output: Annotated[
        bool, typer.Option("--app", help="The project's running app's own output instead.")
    ] = False,
    json: JsonOption = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines as they come.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="With --app: only lines this recent, e.g. 10m.")
    ] = None,
    tail: Annotated[
        int | None, typer.Option(min=1, max=10000, help="With --app: the last N lines.")
    ] = None,
) -> None:
    """A deployment's log (every phase transition, message and build line), or with --app the
    project's running app's own output, its secrets masked."""
    if app_output:
        _app_logs(project_name(target), follow, parse_duration(since) if since else None, tail)
        return

    async def work(backend: Backend) -> None:
        resolved = await backend.resolve(target)
        entries = await backend.logs(resolved)
        if json and not follow:
            print(render.logs_json(entries))
            return
        for entry in entries:
            render.console.print(render.log_line(entry), highlight=False)
        if follow:
            after = entries[-1].id if entries else 0
            async for entry in backend.follow_logs(resolved, after):
                render.console.print(render.log_line(entry), highlight=False)

    run(work)


def _app_logs(project: str, follow: bool, since: timedelta | None, tail: int | None) -> None:
    async def work(backend: Backend) -> None:
        for line in await backend.app_logs(project, tail if tail or since else 100, since):
            render.console.print(line, markup=False, highlight=False, soft_wrap=True)
        if follow:
            async for line in backend.follow_app_logs(project):
                render.console.print(line, markup=False, highlight=False, soft_wrap=True)

    run(work)


@app.command("ls")
def list_deployments(
    project: Annotated[str | None, typer.Option(help="Only this project's.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only those in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, at most.")] = 20,
    json: JsonOption = False,
) -> None:
    """Deployments, newest first, under their short ids (every command takes one)."""
    wanted = project_name(project) if project is not None else None
    found = run(lambda backend: backend.listing(wanted, status, limit))
    if json:
        print(render.deployments_json(found))
    else:
        render.console.print(render.deployments_table(found))


@app.command()
def stuck(
    older_than: Annotated[str, typer.Option(help="How long in one phase counts as stuck.")] = "5m",
    json: JsonOption = False,
) -> None:
    """Deployments queued or in progress whose phase has not moved for longer than
    --older-than, each classified against Temporal: slow, orphaned or no-worker."""
    window = parse_duration(older_than)
    found = run(lambda backend: backend.stuck(window))
    if json:
        print(render.stuck_json(found))
    else:
        render.console.print(render.stuck_table(found))


@app.command()
def cancel(deployment_id: IdArgument) -> None:
    """Cancel a deployment at any phase; the previous release keeps serving."""

    async def work(backend: Backend) -> str:
        resolved = await backend.resolve(deployment_id)
        return f"{resolved}: {await backend.cancel(resolved)}"

    render.console.print(run(work), soft_wrap=True)


@app.command()
def resume(deployment_id: IdArgument, wait: WaitOption = True) -> None:
    """Continue a failed, cancelled or orphaned deployment from its first unfinished phase."""

    async def work(backend: Backend) -> int:
        resolved = await backend.resolve(deployment_id)
        before = await backend.status(resolved)
        await backend.resume(resolved)
        render.console.print(f"resuming {resolved}", soft_wrap=True)
        if not wait:
            return 0
        await next_round(backend, resolved, (before.details.round or 0) if before else 0)
        return await waited(backend, resolved)

    raise typer.Exit(run(work))


@app.command()
def rollback(
    project: str,
    to: Annotated[
        str | None, typer.Option(help="A deployment (or its first 8+ characters) to go back to.")
    ] = None,
    wait: WaitOption = True,
) -> None:
    """Switch PROJECT to an earlier kept release at once, without rebuilding."""
    name = project_name(project)

    async def work(backend: Backend) -> int:
        target = await backend.resolve(to) if to is not None else None
        deployment_id = await backend.rollback(name, target)
        render.console.print(deployment_id, soft_wrap=True)
        return await waited(backend, deployment_id) if wait else 0

    raise typer.Exit(run(work))
