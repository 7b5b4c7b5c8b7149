"""How deployments look on a terminal: tables, logs and a live progress bar."""

import json
from collections.abc import AsyncIterator, Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from slipway.analytics import Eta, Stats
from slipway.diagnosis import Diagnosis
from slipway.models import DeploymentView, LogEntry
from slipway.monitoring import Alert, ProjectSummary

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


def stuck_table(found: list[Diagnosis]) -> Table:
    """Stuck deployments, oldest phase first, with what each is doing."""
    table = Table("deployment", "project", "phase", "since", "kind", "detail")
    for item in found:
        view = item.view
        table.add_row(
            view.id,
            view.project,
            f"{view.phase.value} ({view.progress}%)",
            view.phase_updated_at.isoformat(timespec="seconds"),
            item.kind.value,
            item.detail,
        )
    return table


def stuck_json(found: list[Diagnosis]) -> str:
    """The `stuck --json` document."""
    return json.dumps(
        [
            {
                "id": item.view.id,
                "project": item.view.project,
                "status": item.view.status.value,
                "phase": item.view.phase.value,
                "phase_updated_at": item.view.phase_updated_at.isoformat(),
                "kind": item.kind.value,
                "detail": item.detail,
            }
            for item in found
        ],
        indent=2,
    )


async def show_progress(
    snapshots: AsyncIterator[DeploymentView | None],
    eta: Callable[[DeploymentView], Eta | None] = lambda _: None,
) -> DeploymentView | None:
    """Draw a live bar from the deployment's snapshots, with `eta`'s estimate of the time
    left when it has one; return the last snapshot."""
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
                eta=f"about {left.remaining_seconds:.0f}s left" if left else "",
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
