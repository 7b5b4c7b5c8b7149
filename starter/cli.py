"""The `slipway` command line."""

import asyncio
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
import typer
from temporalio.client import Client

from slipway import monitoring, queries, records
from slipway.analytics import eta as estimate
from slipway.analytics import recent_medians
from slipway.analytics import stats as deployment_stats
from slipway.database import engine_for, migrate
from slipway.diagnosis import Diagnosis, diagnose
from slipway.models import DeploymentView, ReconcileReport
from slipway.names import InvalidNameError, validate_project_name
from slipway.phases import WAITING, Status
from slipway.settings import Settings
from slipway.temporal import connect
from slipway.workflow_ids import deployment_workflow_id
from starter import api, render
from starter.devstack import EXAMPLE_SITE, run_stack, ui_url
from starter.http.app import serve
from starter.http.config import ApiSettings, resolve_token, token_file
from starter.uploads import UploadError

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, help="Durable deployments on Temporal.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
app.add_typer(db_app, name="db")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    render.errors.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _engine(settings: Settings) -> sa.Engine:
    return engine_for(settings.sqlalchemy_url)


async def _client(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as err:
        raise _fail(
            f"cannot reach Temporal at {settings.temporal_address} ({err}); "
            "is `slipway dev` running?"
        ) from None


def _parse_duration(text: str) -> timedelta:
    found = re.fullmatch(r"(\d+)([smhd])", text)
    if not found:
        raise _fail(f"invalid duration {text!r}: use a number and s, m, h or d, e.g. 5m")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[found.group(2)]
    try:
        return timedelta(**{unit: int(found.group(1))})
    except OverflowError:
        raise _fail(f"invalid duration {text!r}: too long") from None


async def _deploy(
    settings: Settings,
    path: Path,
    project: str,
    commit: str | None,
    env: dict[str, str] | None = None,
) -> str:
    client = await _client(settings)
    try:
        return await api.start_deployment(
            client, settings, path, project, source_commit=commit, env=env
        )
    except (InvalidNameError, UploadError) as err:
        raise _fail(str(err)) from None


def _environment(pairs: list[str], env_file: Path | None) -> dict[str, str]:
    """KEY=VALUE pairs, after those of an env file (one per line, # comments)."""
    lines = env_file.read_text().splitlines() if env_file else []
    values: dict[str, str] = {}
    for line in [*lines, *pairs]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise _fail(f"invalid environment entry {line.split('=')[0]!r}: use NAME=VALUE")
        values[name.strip()] = value
    return values


async def _wait(settings: Settings, deployment_id: str) -> DeploymentView | None:
    client = await _client(settings)
    engine = _engine(settings)
    typical = await asyncio.to_thread(recent_medians, engine)
    return await render.show_progress(
        api.follow(client, engine, deployment_id),
        lambda view: estimate(view, typical, datetime.now(UTC)),
    )


def _report(settings: Settings, view: DeploymentView | None) -> int:
    if view is None or view.status is not Status.ACTIVE:
        error = view.details.error if view else "no record of the deployment"
        render.errors.print(f"[red]✗ deployment failed:[/] {error}")
        return 1
    render.console.print(f"[green]✓ active[/] {view.details.url or ''}")
    render.console.print(
        f"  Temporal UI: {ui_url(settings, deployment_workflow_id(view.id))}",
        soft_wrap=True,
    )
    return 0


@app.command()
def deploy(
    path: Annotated[Path, typer.Argument(help="A directory, .tar.gz or .zip to deploy.")],
    project: Annotated[str, typer.Option(help="Project name (a DNS label).")],
    wait: Annotated[bool, typer.Option(help="Show live progress until it ends.")] = False,
    commit: Annotated[str | None, typer.Option(help="Source commit, recorded.")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="NAME=VALUE for an app's container (repeatable); sealed."),
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option(help="A file of NAME=VALUE lines for an app's container.")
    ] = None,
) -> None:
    """Upload PATH and deploy it to PROJECT; prints the deployment id."""
    settings = Settings()
    values = _environment(env or [], env_file)
    deployment_id = asyncio.run(_deploy(settings, path, project, commit, values))
    render.console.print(deployment_id, soft_wrap=True)
    if wait:
        raise typer.Exit(_report(settings, asyncio.run(_wait(settings, deployment_id))))


@app.command()
def status(deployment_id: str, json: JsonOption = False) -> None:
    """A deployment's status, phase, progress and metadata."""
    settings = Settings()
    try:
        view = api.status(_engine(settings), deployment_id)
    except InvalidNameError as err:
        raise _fail(str(err)) from None
    if view is None:
        raise _fail(f"no deployment {deployment_id} is recorded (yet)", 1)
    if json:
        print(render.status_json(view))
    else:
        render.console.print(render.status_table(view))
        health = monitoring.health_of(_engine(settings), view.project)
        render.console.print(f"[bold]project health[/] {health.status} {health.detail}")


@app.command()
def logs(
    deployment_id: str,
    json: JsonOption = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until it ends.")
    ] = False,
) -> None:
    """A deployment's log: every phase transition, message and build line, oldest first."""
    settings = Settings()
    try:
        entries = api.logs(_engine(settings), deployment_id)
    except InvalidNameError as err:
        raise _fail(str(err)) from None
    if json and not follow:
        print(render.logs_json(entries))
        return
    for entry in entries:
        render.console.print(render.log_line(entry), highlight=False)
    if follow:
        asyncio.run(_follow_logs(settings, deployment_id, entries[-1].id if entries else 0))


async def _follow_logs(settings: Settings, deployment_id: str, after: int) -> None:
    client = await _client(settings)
    async for entry in api.follow_logs(client, _engine(settings), deployment_id, after):
        render.console.print(render.log_line(entry), highlight=False)


@app.command()
def stuck(
    older_than: Annotated[str, typer.Option(help="How long in one phase counts as stuck.")] = "5m",
    json: JsonOption = False,
) -> None:
    """Deployments queued or in progress whose phase has not moved for longer than
    --older-than, each classified against Temporal: slow, orphaned or no-worker."""
    settings = Settings()
    found = asyncio.run(_stuck(settings, _parse_duration(older_than)))
    if json:
        print(render.stuck_json(found))
    else:
        render.console.print(render.stuck_table(found))


async def _stuck(settings: Settings, older_than: timedelta) -> list[Diagnosis]:
    views = await asyncio.to_thread(queries.find_stuck, _engine(settings), older_than, WAITING)
    client = await _client(settings)
    return [await diagnose(client, view) for view in views]


@app.command()
def cancel(deployment_id: str) -> None:
    """Cancel a deployment at any phase; the previous release keeps serving."""
    settings = Settings()

    async def run() -> str:
        return await api.cancel(await _client(settings), _engine(settings), deployment_id)

    render.console.print(f"{deployment_id}: {_guarded(run)}")


@app.command()
def resume(
    deployment_id: str,
    wait: Annotated[bool, typer.Option(help="Show live progress until it ends.")] = True,
) -> None:
    """Continue a failed, cancelled or orphaned deployment from its first unfinished phase."""
    settings = Settings()

    async def run() -> str:
        client = await _client(settings)
        return await api.resume(client, settings, _engine(settings), deployment_id)

    _guarded(run)
    render.console.print(f"resuming {deployment_id}", soft_wrap=True)
    if wait:
        raise typer.Exit(_report(settings, asyncio.run(_wait(settings, deployment_id))))


@app.command()
def rollback(
    project: str,
    to: Annotated[
        str | None, typer.Option(help="A deployment whose release to go back to.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Show live progress until it ends.")] = True,
) -> None:
    """Switch PROJECT to an earlier kept release at once, without rebuilding."""
    settings = Settings()

    async def run() -> str:
        client = await _client(settings)
        return await api.rollback(client, settings, _engine(settings), project, to)

    deployment_id = _guarded(run)
    render.console.print(deployment_id, soft_wrap=True)
    if wait:
        raise typer.Exit(_report(settings, asyncio.run(_wait(settings, deployment_id))))


@app.command()
def reconcile() -> None:
    """Run one reconcile pass now: resolve orphans, clean up this server's leftovers."""
    settings = Settings()

    async def run() -> ReconcileReport:
        return await api.reconcile_now(await _client(settings), settings)

    render.console.print_json(_guarded(run).model_dump_json())


def _guarded(run: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a request; a refusal becomes a message and exit code 2, not a traceback."""
    try:
        return asyncio.run(run())
    except (api.DeploymentError, InvalidNameError) as err:
        raise _fail(str(err)) from None


@app.command()
def projects(json: JsonOption = False) -> None:
    """Every project with its health, as the monitor last saw it."""
    found = monitoring.project_summaries(_engine(Settings()))
    if json:
        print("[" + ",".join(p.model_dump_json(by_alias=True) for p in found) + "]")
    else:
        render.console.print(render.projects_table(found))


@app.command()
def alerts(
    project: Annotated[str | None, typer.Argument(help="Only this project's.")] = None,
    json: JsonOption = False,
) -> None:
    """Alerts raised by the monitor, newest first."""
    found = monitoring.list_alerts(_engine(Settings()), project)
    if json:
        print("[" + ",".join(a.model_dump_json() for a in found) + "]")
    else:
        render.console.print(render.alerts_table(found))


@app.command()
def heal(project: str) -> None:
    """Resume healing PROJECT after a restart loop: restarts forgotten, alerts resolved."""
    try:
        validate_project_name(project)
    except InvalidNameError as err:
        raise _fail(str(err)) from None
    monitoring.heal(_engine(Settings()), project)
    render.console.print(f"{project}: healing resumed")


@app.command()
def pin(project: str, server: str) -> None:
    """Pin PROJECT to SERVER: its next deployments run their host-bound work there (files
    already on the old server stay there)."""
    settings = Settings()
    try:
        validate_project_name(project)
        validate_project_name(server)
    except InvalidNameError as err:
        raise _fail(str(err)) from None
    records.pin(_engine(settings), project, server, settings.project_host(project))
    render.console.print(f"{project} is pinned to {server}")


@app.command()
def stats(
    since: Annotated[str, typer.Option(help="The window: a number and s, m, h or d.")] = "7d",
    json: JsonOption = False,
) -> None:
    """Which phases take longest and where deployments fail, over the window."""
    report = deployment_stats(_engine(Settings()), _parse_duration(since))
    if json:
        print(report.model_dump_json(by_alias=True, indent=2))
    else:
        for table in render.stats_tables(report):
            render.console.print(table)


@app.command("api")
def api_server(
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 3001).")] = None,
) -> None:
    """Serve the HTTP API and the deployments page until Ctrl-C."""
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
    migrate(Settings().sqlalchemy_url)
    render.console.print("schema is up to date")


@app.command()
def dev() -> None:
    """Run the embedded stack in the foreground until Ctrl-C."""
    raise typer.Exit(run_stack(Settings()))


@app.command()
def demo(
    path: Annotated[Path, typer.Argument(help="What to deploy.")] = EXAMPLE_SITE,
    project: Annotated[str, typer.Option(help="Project name.")] = "example",
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop the stack once the deployment ends.")
    ] = False,
) -> None:
    """Run the embedded stack and deploy the example site through it."""

    def deploy_example(settings: Settings) -> tuple[int, bool]:
        deployment_id = asyncio.run(_deploy(settings, path, project, None))
        render.console.print(
            f"Deploying {path} as [bold]{project}[/]: {deployment_id}", soft_wrap=True
        )
        code = _report(settings, asyncio.run(_wait(settings, deployment_id)))
        if code == 0:
            render.console.print(
                f"  Try: curl http://{settings.project_host(project)}:{settings.http_port}/"
            )
        return code, not exit_after

    raise typer.Exit(run_stack(Settings(), deploy_example))
