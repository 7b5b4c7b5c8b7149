"""The commands about deployments: deploy, status, logs, ls, stuck, cancel, resume,
rollback, promote and previews rm; each works on the server and, through the API, from
another machine."""

import subprocess
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slipway.heap import freeze_startup
from slipway.phases import Status
from starter import render
from starter.backend import USAGE, Backend, Refusal
from starter.cli.common import (
    IdArgument,
    JsonOption,
    WaitOption,
    app,
    environment,
    fail,
    next_round,
    parse_duration,
    preview_of,
    previews_app,
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
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Deploy a preview of PROJECT at <name>--<project>.<base domain> instead; "
            "production is not touched.",
        ),
    ] = False,
    preview_name: Annotated[
        str | None,
        typer.Argument(
            help="With --preview: its name (a DNS label; default: the branch of --ref or of "
            "PATH's git checkout, else a short id). Given after PATH, or alone with --git.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deploy PATH, a repository (--git URL [--ref REF]) or, with neither, the project's own
    repository at its branch, to PROJECT; prints the deployment id. Remotely, a directory's
    files are sent only when the server lacks their content. With --preview [NAME], it
    deploys PROJECT's preview NAME instead."""
    if not project:
        raise fail("give the project: --project NAME")
    if git is not None and path is not None and preview and preview_name is None:
        # `--git URL --preview NAME`: the one argument is the preview's name.
        path, preview_name = None, str(path)
    if path is not None and git is not None:
        raise fail("give a PATH or --git URL, not both")
    if ref is not None and git is None:
        raise fail("--ref goes with --git URL")
    if preview_name is not None and not preview:
        raise fail("a second argument is a preview's name: give --preview")
    values = environment(env or [], env_file)
    from slipway.models import GitSource

    source = GitSource(url=git, ref=ref) if git is not None else None
    name = _preview_name(project_name(project), preview_name, ref, path) if preview else None

    async def work(backend: Backend) -> int:
        if path is not None:
            if threading.current_thread() is threading.main_thread():
                # Describing a large tree makes an object per entry. Only a process the
                # command runs in as its own (on the main thread) has its heap frozen: one
                # that runs it on a thread of its own (a test, a program embedding the CLI)
                # keeps its heap as it is.
                freeze_startup()
            deployment_id = await backend.deploy(path, project, commit, values, name)
        else:
            deployment_id = await backend.deploy_git(project, source, commit, values, name)
        render.console.print(deployment_id, soft_wrap=True)
        return await waited(backend, deployment_id) if wait else 0

    raise typer.Exit(run(work))


def _preview_name(project: str, given: str | None, ref: str | None, path: Path | None) -> str:
    """The preview's name: as given, else made of the branch (of --ref, else of PATH's git
    checkout), else a short id."""
    from slipway.names import preview_name_of

    if given is None:
        branch = ref or (_checked_out(path) if path is not None else None)
        given = (preview_name_of(branch, project) if branch else None) or uuid.uuid4().hex[:8]
    return preview_of(project, given)


def _checked_out(path: Path) -> str | None:
    """The branch checked out where PATH is, if it is in a git work tree (none when its HEAD
    is detached)."""
    where = path if path.is_dir() else path.parent
    try:
        found = subprocess.run(
            ["git", "-C", str(where), "symbolic-ref", "--quiet", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    branch = found.stdout.strip()
    return branch if found.returncode == 0 and branch else None


@app.command()
def status(
    deployment_id: IdArgument,
    json: JsonOption = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Every key of its metadata too, a failure's stack among them."
        ),
    ] = False,
) -> None:
    """A deployment's status, the phase and progress it reached, why it failed, its URL and
    its project's health; with -v, its metadata."""

    async def work(backend: Backend) -> None:
        resolved = await backend.resolve(deployment_id)
        view = await backend.status(resolved, verbose)
        if view is None:
            raise Refusal(f"no deployment {resolved} is recorded", USAGE)
        if json:
            print(render.status_json(view, verbose))
            return
        render.console.print(render.status_table(view, verbose))
        health = await backend.health(view.project)
        detail = f" {health.detail}" if health.detail else ""
        render.console.print(
            f"[bold]project health[/] {health.status}{escape(detail)}", soft_wrap=True
        )

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
        if await backend.status(resolved) is None:
            raise Refusal(f"no deployment {resolved} is recorded", USAGE)
        entries = await backend.logs(resolved)
        if json and not follow:
            print(render.logs_json(entries))
            return
        for entry in entries:
            render.console.print(render.log_line(entry), highlight=False, soft_wrap=True)
        if follow:
            after = entries[-1].id if entries else 0
            async for entry in backend.follow_logs(resolved, after):
                render.console.print(render.log_line(entry), highlight=False, soft_wrap=True)

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
    previews: Annotated[
        bool,
        typer.Option("--previews", help="The previews instead: where each answers, until when."),
    ] = False,
) -> None:
    """Deployments, newest first, under their short ids (every command takes one); with
    --previews, the previews not removed."""
    wanted = project_name(project) if project is not None else None
    if previews:
        _list_previews(wanted, json)
        return
    found = run(lambda backend: backend.listing(wanted, status, limit))
    if json:
        print(render.deployments_json(found))
    else:
        render.console.print(render.deployments_table(found))


def _list_previews(project: str | None, json: bool) -> None:
    found = run(lambda backend: backend.previews(project))
    if json:
        print(render.previews_json(found))
    else:
        render.console.print(render.previews_table(found))


@app.command()
def stuck(
    older_than: Annotated[str, typer.Option(help="How long in one phase counts as stuck.")] = "5m",
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="How many, at most (by default the server's SLIPWAY_STUCK_LIMIT, at most its "
            "SLIPWAY_STUCK_MAX_LIMIT).",
        ),
    ] = None,
    after: Annotated[
        str | None, typer.Option(help="Begin after this cursor, which the page before named.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Deployments queued or in progress whose phase has not moved for longer than
    --older-than, the longest first, each classified against Temporal: slow, orphaned or
    no-worker. A page at a time: when more follow, the command for the next page is
    printed on stderr."""
    window = parse_duration(older_than)
    listing = run(lambda backend: backend.stuck(window, limit, after))
    if json:
        print(render.stuck_json(listing.found))
    else:
        render.console.print(render.stuck_table(listing.found))
    if listing.after is not None:
        paged = f" --limit {limit}" if limit is not None else ""
        render.errors.print(
            f"more: slipway stuck --older-than {older_than}{paged} --after {listing.after}",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


@app.command()
def cancel(deployment_id: IdArgument) -> None:
    """Cancel a deployment at any phase; the previous release keeps serving."""

    async def work(backend: Backend) -> str:
        resolved = await backend.resolve(deployment_id)
        return f"{resolved}: {await backend.cancel(resolved)}"

    render.console.print(run(work), soft_wrap=True)


@app.command()
def resume(deployment_id: IdArgument, wait: WaitOption = True) -> None:
    """Continue a failed, cancelled or orphaned deployment from its first unfinished phase;
    with --wait, follow the resumed run (not how the last one ended) until it ends."""

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
    project: Annotated[str, typer.Argument(help="Project name.")],
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


@app.command()
def promote(
    project: Annotated[str, typer.Argument(help="Project name.")],
    preview: Annotated[str, typer.Argument(help="The preview whose release goes live.")],
    wait: WaitOption = True,
) -> None:
    """Switch PROJECT's production to the release its PREVIEW serves, without rebuilding;
    recorded as a deployment of PROJECT, like a rollback."""
    name = project_name(project)
    wanted = preview_of(name, preview)

    async def work(backend: Backend) -> int:
        deployment_id = await backend.promote(name, wanted)
        render.console.print(deployment_id, soft_wrap=True)
        return await waited(backend, deployment_id) if wait else 0

    raise typer.Exit(run(work))


@previews_app.command("rm")
def remove_preview(
    project: Annotated[str, typer.Argument(help="Project name.")],
    preview: Annotated[str, typer.Argument(help="The preview to remove.")],
) -> None:
    """Remove PROJECT's PREVIEW with everything it used (its route, containers, releases),
    after any deployment of it in progress; its deployments stay on record."""
    name = project_name(project)
    wanted = preview_of(name, preview)
    run(lambda backend: backend.remove_preview(name, wanted))
    render.console.print(f"removing preview {wanted} of {name}", soft_wrap=True)
