"""How deployments look on a terminal: tables, logs and a live progress bar. The local and
the remote CLI draw through the same functions, so both print the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from slipway.models import DeploymentView, LogEntry

if TYPE_CHECKING:
    # Types only: the remote CLI draws these without loading the database's modules.
    from slipway.analytics import Stats
    from slipway.domains import DomainView
    from slipway.monitoring import Alert, ProjectSummary
    from starter.http.schemas import Stuck
    from starter.project_env import EnvChange, EnvListing
    from starter.projects import SourceView

console = Console()
errors = Console(stderr=True)


def status_json(view: DeploymentView) -> str:
    """The `status --json` document."""
    return json.dumps(
        {
            "id": view.id,
            "project": view.project,
            "status": view.status.value,
            "phase": view.phase.value,
            "progress": view.progress,
            "metadata": view.metadata,
            "updated_at": view.updated_at.isoformat(),
        },
        indent=2,
    )


def status_table(view: DeploymentView) -> Table:
    """A deployment as a two-column table."""
    table = Table(show_header=False, box=None)
    for key, value in (
        ("deployment", view.id),
        ("project", view.project),
        ("status", view.status.value),
        ("phase", f"{view.phase.value} ({view.progress}%)"),
        ("updated", view.updated_at.isoformat(timespec="seconds")),
        ("source", view.source),
    ):
        table.add_row(f"[bold]{key}[/]", value)
    for key, extra in view.metadata.items():
        if key != "stack":
            table.add_row(f"  {key}", extra if isinstance(extra, str) else json.dumps(extra))
    return table


def logs_json(entries: list[LogEntry]) -> str:
    """The `logs --json` document."""
    return json.dumps([e.model_dump(mode="json") for e in entries], indent=2)


def log_line(entry: LogEntry) -> str:
    """One log row as a line."""
    colour = {"error": "red", "warning": "yellow"}.get(entry.level, "cyan")
    stamp = entry.timestamp.isoformat(timespec="milliseconds")
    return (
        f"[dim]{stamp}[/] [{colour}]{entry.level:<7}[/] [bold]{entry.phase:<18}[/] {entry.message}"
    )


def deployments_table(views: list[DeploymentView]) -> Table:
    """Deployments, newest first, each under its short id (its first 8 characters, which
    every command that takes an id accepts)."""
    table = Table("id", "project", "status", "phase", "created", "source")
    for view in views:
        table.add_row(
            view.id[:8],
            view.project,
            view.status.value,
            f"{view.phase.value} ({view.progress}%)",
            view.created_at.isoformat(timespec="seconds"),
            view.source,
        )
    return table


def deployments_json(views: list[DeploymentView]) -> str:
    """The `ls --json` document."""
    return json.dumps(
        [
            {
                "id": view.id,
                "project": view.project,
                "status": view.status.value,
                "phase": view.phase.value,
                "progress": view.progress,
                "created_at": view.created_at.isoformat(),
                "updated_at": view.updated_at.isoformat(),
                "source": view.source,
            }
            for view in views
        ],
        indent=2,
    )


def stuck_table(found: list[Stuck]) -> Table:
    """Stuck deployments, oldest phase first, with what each is doing."""
    table = Table("deployment", "project", "phase", "since", "kind", "detail")
    for item in found:
        table.add_row(
            item.id,
            item.project,
            f"{item.phase.value} ({item.progress}%)",
            item.phase_updated_at.isoformat(timespec="seconds"),
            item.kind.value,
            item.detail,
        )
    return table


def stuck_json(found: list[Stuck]) -> str:
    """The `stuck --json` document."""
    return json.dumps(
        [
            {
                "id": item.id,
                "project": item.project,
                "status": item.status.value,
                "phase": item.phase.value,
                "phase_updated_at": item.phase_updated_at.isoformat(),
                "kind": item.kind.value,
                "detail": item.detail,
            }
            for item in found
        ],
        indent=2,
    )


async def show_progress(
    snapshots: AsyncIterator[DeploymentView | None],
    eta: Callable[[DeploymentView], float | None] = lambda _: None,
) -> DeploymentView | None:
    """Draw a live bar from the deployment's snapshots, with `eta`'s estimate of the
    seconds left when it has one; return the last snapshot."""
    last: DeploymentView | None = None
    columns = (
        TextColumn("[bold]{task.description:<20}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("queued", total=100, eta="")
        async for view in snapshots:
            if view is None:
                continue
            last = view
            left = eta(view)
            bar.update(
                task,
                completed=view.progress,
                description=view.phase.value,
                eta=f"about {left:.0f}s left" if left is not None else "",
            )
    return last


def projects_table(found: list[ProjectSummary]) -> Table:
    """Projects with their health."""
    table = Table(
        "project", "domain", "serving", "deployments", "health", "last check", "restarts", "detail"
    )
    colours = {"healthy": "green", "degraded": "yellow", "down": "red"}
    for item in found:
        health = item.health
        status = f"[{colours.get(health.status, 'dim')}]{health.status}[/]"
        if health.healing_paused:
            status += " (healing paused)"
        table.add_row(
            item.name,
            item.domain,
            item.serving or "-",
            str(item.deployments),
            status,
            health.last_check or "-",
            str(health.restarts_in_window),
            health.detail if health.status != "healthy" else "",
        )
    return table


def alerts_table(found: list[Alert]) -> Table:
    """Alerts, newest first."""
    table = Table("id", "project", "kind", "raised", "delivered", "resolved", "message")
    for alert in found:
        table.add_row(
            str(alert.id),
            alert.project,
            alert.kind,
            alert.created_at.isoformat(timespec="seconds"),
            alert.delivered_at.isoformat(timespec="seconds") if alert.delivered_at else "-",
            alert.resolved_at.isoformat(timespec="seconds") if alert.resolved_at else "-",
            alert.message,
        )
    return table


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}m"


def stats_tables(report: Stats) -> list[Table]:
    """`slipway stats`: per phase, per day, and the phases deployments fail in most."""
    since = report.since.isoformat(timespec="minutes")
    phases = Table(
        "phase", "runs", "p50", "p95", "max", "failed", "cancelled", title=f"Phases since {since}"
    )
    for p in report.phases:
        phases.add_row(
            p.phase.value,
            str(p.count),
            _seconds(p.p50_seconds),
            _seconds(p.p95_seconds),
            _seconds(p.max_seconds),
            str(p.failures),
            str(p.cancellations),
        )
    days = Table(
        "day", "deployments", "active", "failed", "cancelled", "success", title="Per day (UTC)"
    )
    for d in report.days:
        rate = f"{d.success_rate:.0%}" if d.success_rate is not None else "-"
        days.add_row(
            d.day.isoformat(),
            str(d.deployments),
            str(d.active),
            str(d.failed),
            str(d.cancelled),
            rate,
        )
    failing = Table("phase", "failures", "share", "per run", title="Where deployments fail")
    for f in report.failing:
        failing.add_row(f.phase.value, str(f.failures), f"{f.share:.0%}", f"{f.failure_rate:.0%}")
    return [phases, days, failing]


def source_table(source: SourceView) -> Table:
    """A project's source settings, secrets only as set or not."""
    table = Table("setting", "value", title=f"project {source.project}")
    table.add_row("repository", source.git_url or "-")
    table.add_row("branch", source.branch or "(the remote's HEAD)")
    table.add_row("token", "set" if source.token else "-")
    table.add_row("ssh key", "set" if source.ssh_key else "-")
    table.add_row("webhook secret", "set" if source.webhook_secret else "-")
    table.add_row("registry credentials", "set" if source.registry_auth else "-")
    table.add_row("notify", source.notify_url or "-")
    return table


def env_table(listing: EnvListing) -> Table | str:
    """A project's variables, values masked, under its version."""
    if not listing.variables:
        return f"{listing.project} has no environment variables (version {listing.version})"
    table = Table("name", "value", title=f"{listing.project} env version {listing.version}")
    for variable in listing.variables:
        table.add_row(variable.name, variable.value)
    return table


def env_changed(change: EnvChange) -> str:
    """What a change made: its version, and the deployment it started."""
    made = change.version
    parts = [f"set {', '.join(made.set)}"] if made.set else []
    parts += [f"unset {', '.join(made.unset)}"] if made.unset else []
    line = f"{made.project}: env version {made.version} ({'; '.join(parts) or 'unchanged'})"
    if change.deployment_id:
        return f"{line}\nredeploying: {change.deployment_id}"
    if change.redeploy_error is None:
        line += "; running deployments keep theirs until the next deploy (or --redeploy)"
    return line


def domains_table(found: list[DomainView]) -> Table | str:
    """Domains with their certificate's state."""
    if not found:
        return "no domains"
    table = Table("domain", "project", "www", "certificate", "until / why")
    for view in found:
        cert = view.certificate
        detail = cert.error or (cert.expires_at.isoformat() if cert.expires_at else "")
        name = view.name if view.unicode_name == view.name else f"{view.unicode_name} ({view.name})"
        table.add_row(
            name, view.project, "redirects" if view.redirect_www else "", cert.state.value, detail
        )
    return table


def domains_json(found: list[DomainView]) -> str:
    """Domains as JSON, as the API answers them."""
    return json.dumps([view.model_dump(by_alias=True, mode="json") for view in found], indent=2)
