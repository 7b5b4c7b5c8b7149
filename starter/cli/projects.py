"""The commands about projects: their health, alerts and healing, their server, and their
source settings."""

from pathlib import Path
from typing import Annotated

import typer

from starter import render
from starter.backend import Backend
from starter.cli.common import (
    JsonOption,
    app,
    domains_app,
    fail,
    on_server,
    project_app,
    project_name,
    run,
)


@app.command()
def projects(json: JsonOption = False) -> None:
    """Every project with its health, as the monitor last saw it."""
    found = run(lambda backend: backend.projects())
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
    on_server("alerts")
    from slipway import monitoring
    from starter.local import Local

    found = monitoring.list_alerts(Local().engine, project_name(project) if project else None)
    if json:
        print("[" + ",".join(a.model_dump_json() for a in found) + "]")
    else:
        render.console.print(render.alerts_table(found))


@app.command()
def heal(project: Annotated[str, typer.Argument(help="Project name.")]) -> None:
    """Resume healing PROJECT after a restart loop: restarts forgotten, alerts resolved."""
    on_server("heal")
    from slipway import monitoring, queries
    from starter.local import Local

    name = project_name(project)
    engine = Local().engine
    if not queries.project_exists(engine, name):
        raise fail(f"no project {name!r} is recorded")
    monitoring.heal(engine, name)
    render.console.print(f"{name}: healing resumed")


@app.command()
def pin(
    project: Annotated[str, typer.Argument(help="Project name.")],
    server: Annotated[str, typer.Argument(help="A server's name (its worker's SLIPWAY_SERVER).")],
) -> None:
    """Pin PROJECT to SERVER: its next deployments run their host-bound work there (files
    already on the old server stay there). SERVER must have a worker running now."""
    on_server("pin")
    from slipway import records
    from slipway.names import InvalidNameError, validate_server_name
    from slipway.settings import host_task_queue
    from slipway.temporal import has_pollers
    from starter.local import Local

    name = project_name(project)
    try:
        target = validate_server_name(server)
    except InvalidNameError as err:
        raise fail(str(err)) from None
    local = Local()
    queue = host_task_queue(local.settings.task_queue, target)

    async def served(_: Backend) -> bool:
        return await has_pollers(await local.client(), queue, activities=True)

    if not run(served, local):
        raise fail(
            f"no worker serves server {target!r} (none polls {queue}): start its worker "
            f"(SLIPWAY_SERVER={target}) first, or pin to a server that has one"
        )
    records.pin(local.engine, name, target, local.settings.project_host(name))
    render.console.print(f"{name} is pinned to {target}")


@project_app.command("set")
def project_set(
    name: Annotated[str, typer.Argument(help="Project name.")],
    git: Annotated[
        str | None, typer.Option("--git", help="The repository it deploys from.")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Its production branch.")] = None,
    git_user: Annotated[
        str | None, typer.Option(help="User name sent with the token (default x-access-token).")
    ] = None,
    git_token_file: Annotated[
        Path | None, typer.Option(help="A file holding an HTTPS token; sealed.")
    ] = None,
    ssh_key_file: Annotated[
        Path | None, typer.Option(help="A file holding an SSH deploy key; sealed.")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="The push webhook's secret (default: one is made).")
    ] = None,
    registry_auth_file: Annotated[
        Path | None,
        typer.Option(help='A file of JSON {"<registry>": {"username", "password"}}; sealed.'),
    ] = None,
    notify: Annotated[
        str | None, typer.Option(help="Where each deployment's end is POSTed.")
    ] = None,
    previews: Annotated[
        bool | None,
        typer.Option(
            "--previews/--no-previews",
            help="Whether a push to another branch than the production one deploys its preview.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Remember where PROJECT's source comes from, and how to open it, and whether pushes to
    other branches deploy previews. A webhook secret made now is printed once: give it to
    the forge's push webhook."""
    from starter.projects import SourceSettings

    if git is None:
        if previews is None:
            raise fail("give --git URL, or --previews/--no-previews")
        kept = run(lambda backend: backend.set_previews(project_name(name), previews))
        render.console.print(render.source_table(kept))
        return

    try:
        change = SourceSettings(
            git_url=git,
            branch=branch,
            git_user=git_user,
            git_token=git_token_file.read_text().strip() if git_token_file else None,
            ssh_key=ssh_key_file.read_text() if ssh_key_file else None,
            webhook_secret=webhook_secret,
            registry_auth=registry_auth_file.read_text() if registry_auth_file else None,
            notify_url=notify,
        )
    except (OSError, ValueError) as err:
        raise fail(str(err)) from None
    kept, generated = run(lambda backend: backend.set_source(project_name(name), change))
    if previews is not None:
        kept = run(lambda backend: backend.set_previews(project_name(name), previews))
    render.console.print(render.source_table(kept))
    if generated:
        render.console.print(
            f"webhook secret (shown once): {generated}", markup=False, soft_wrap=True
        )


@project_app.command("show")
def project_show(
    name: Annotated[str, typer.Argument(help="Project name.")], json: JsonOption = False
) -> None:
    """Where PROJECT's source comes from; secrets only as whether they are set."""
    kept = run(lambda backend: backend.source(project_name(name)))
    if json:
        print(kept.model_dump_json(by_alias=True, indent=2))
    else:
        render.console.print(render.source_table(kept))


@domains_app.command("add")
def domains_add(
    project: Annotated[str, typer.Argument(help="Project name.")],
    name: Annotated[str, typer.Argument(help="The domain, e.g. example.com (Unicode too).")],
    redirect_www: Annotated[
        bool, typer.Option(help="Also answer at www.NAME, redirecting to NAME.")
    ] = False,
    certificate: Annotated[
        Path | None, typer.Option(help="Your own certificate chain (PEM), instead of ACME.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Its private key (PEM); sealed.")] = None,
) -> None:
    """Have PROJECT answer at NAME at once, without a redeploy; its certificate comes from
    the ACME CA (or is yours)."""
    try:
        chain = certificate.read_text() if certificate else None
        private = key.read_text() if key else None
    except OSError as err:
        raise fail(str(err)) from None
    wanted = project_name(project)
    view = run(lambda b: b.add_domain(wanted, name, redirect_www, chain, private))
    render.console.print(render.domains_table([view]))


@domains_app.command("rm")
def domains_rm(
    project: Annotated[str, typer.Argument(help="Project name.")],
    name: Annotated[str, typer.Argument(help="The domain.")],
) -> None:
    """Stop PROJECT answering at NAME, at once."""
    wanted = project_name(project)
    view = run(lambda b: b.remove_domain(wanted, name))
    render.console.print(f"removed {view.name} from {view.project}", markup=False)


@domains_app.command("ls")
def domains_ls(
    project: Annotated[str | None, typer.Argument(help="Only this project's.")] = None,
    json: JsonOption = False,
) -> None:
    """Domains, each with its certificate: pending, issued (until when), expired, or failed
    with the CA's reason."""
    wanted = project_name(project) if project else None
    found = run(lambda b: b.domains(wanted))
    if json:
        print(render.domains_json(found))
    else:
        render.console.print(render.domains_table(found))
