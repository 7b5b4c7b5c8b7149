"""The commands that run the server side: the embedded stack, the API, a reconcile pass, the
schema, and the statistics."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from starter import render
from starter.backend import Backend
from starter.cli.common import (
    JsonOption,
    app,
    db_app,
    on_server,
    parse_duration,
    run,
    waited,
)

if TYPE_CHECKING:
    from slipway.models import ReconcileReport


@app.command()
def stats(
    since: Annotated[str, typer.Option(help="The window: a number and s, m, h or d.")] = "7d",
    json: JsonOption = False,
) -> None:
    """Which phases take longest and where deployments fail, over the window."""
    window = parse_duration(since)
    report = run(lambda backend: backend.stats(window))
    if json:
        print(report.model_dump_json(by_alias=True, indent=2))
    else:
        for table in render.stats_tables(report):
            render.console.print(table)


@app.command()
def reconcile(json: JsonOption = False) -> None:
    """Run one reconcile pass now: resolve orphans, clean up this server's leftovers."""
    on_server("reconcile")
    from starter import api
    from starter.local import Local

    local = Local()

    async def work(_: Backend) -> ReconcileReport:
        return await api.reconcile_now(await local.client(), local.settings)

    report = run(work, local)
    if json:
        print(report.model_dump_json(indent=2))
        return
    for line in render.reconcile_summary(report):
        render.console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("api")
def api_server(
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 3001).")] = None,
) -> None:
    """Serve the HTTP API and the deployments page until Ctrl-C."""
    from slipway.settings import Settings
    from starter.http.app import serve
    from starter.http.config import ApiSettings, resolve_token, token_file

    settings = Settings()
    given = {"host": host, "port": port}
    config = ApiSettings().model_copy(update={k: v for k, v in given.items() if v is not None})
    token = resolve_token(settings, config)
    where = f"http://{config.host}:{config.port}"
    source = "SLIPWAY_API_TOKEN" if config.token else token_file(settings)
    render.console.print(f"[bold]API[/]   {where}/openapi.json (bearer token: {source})")
    if sys.stdout.isatty():
        render.console.print(f"[bold]Page[/]  {where}/?token={token}", soft_wrap=True)
    else:
        # Not a terminal: a log (docker logs, a service's journal), which must not hold it.
        render.console.print(f"[bold]Page[/]  {where}/?token=<the bearer token>", soft_wrap=True)
    serve(settings, config)


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest revision."""
    from slipway.database import migrate
    from slipway.settings import Settings

    migrate(Settings().sqlalchemy_url)
    render.console.print("schema is up to date")


@app.command()
def dev() -> None:
    """Run the embedded stack in the foreground until Ctrl-C."""
    from slipway.settings import Settings
    from starter.devstack import run_stack

    raise typer.Exit(run_stack(Settings()))


@app.command()
def demo(
    path: Annotated[
        Path | None, typer.Argument(help="What to deploy (default: the example site).")
    ] = None,
    project: Annotated[str, typer.Option(help="Project name.")] = "example",
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop the stack once the deployment ends.")
    ] = False,
) -> None:
    """Run the embedded stack and deploy the example site (or PATH) through it."""
    from slipway.settings import Settings
    from starter.devstack import EXAMPLE_SITE, run_stack
    from starter.local import Local

    site = path or EXAMPLE_SITE

    def deploy_example(settings: Settings) -> tuple[int, bool]:
        async def work(backend: Backend) -> int:
            deployment_id = await backend.deploy(site, project, None, {})
            render.console.print(
                f"Deploying {site} as [bold]{project}[/]: {deployment_id}", soft_wrap=True
            )
            return await waited(backend, deployment_id)

        code = run(work, Local(settings))
        if code == 0:
            render.console.print(
                f"  Try: curl http://{settings.project_host(project)}:{settings.http_port}/"
            )
        return code, not exit_after

    raise typer.Exit(run_stack(Settings(), deploy_example))
