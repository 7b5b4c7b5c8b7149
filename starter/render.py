"""How deployments look on a terminal: tables, logs and a live progress bar. The local and
the remote CLI draw through the same functions, so both print the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from slipway.phases import PROGRESS, WORK_PHASES, Phase, Status

if TYPE_CHECKING:
    # Types only: the remote CLI draws these without loading the database's modules, and
    # `slipway --help` without loading the models (pydantic).
    from slipway.analytics import Stats
    from slipway.domains import DomainView
    from slipway.models import DeploymentView, LogEntry, PreviewView, ReconcileReport
    from slipway.project_health import Alert, ProjectSummary
    from starter.http.schemas import Stuck
    from starter.project_env import EnvChange, EnvListing
    from starter.projects import SourceView

console = Console()
errors = Console(stderr=True)


def status_json(view: DeploymentView, verbose: bool = False) -> str:
    """The `status --json` document; the failure's stack (server paths) only when asked."""
    return json.dumps(
        {
            "id": view.id,
            "project": view.project,
            "status": view.status.value,
            "phase": view.phase.value,
            "progress": view.progress,
            "metadata": view.metadata if verbose else _without_stack(view),
            "updated_at": view.updated_at.isoformat(),
        },
        indent=2,
    )


def _without_stack(view: DeploymentView) -> dict[str, object]:
    return {key: value for key, value in view.metadata.items() if key != "stack"}


def reached(view: DeploymentView) -> str:
    """The phase and progress a deployment is at, or for one that ended without going
    active, the phase it ended in and the progress it had reached."""
    ended_in = view.details.failed_phase
    if view.phase is Phase.FAILED and ended_in is not None:
        return f"{ended_in.value} ({view.progress}%)"
    return f"{view.phase.value} ({view.progress}%)"


def when(moment: datetime) -> str:
    """A moment as people read it: date and time to the second, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_table(view: DeploymentView, verbose: bool = False) -> Table:
    """A deployment as a two-column table: what a person asks first; with `verbose`, every
    key of its metadata too (the failure's stack among them)."""
    details = view.details
    table = Table(show_header=False, box=None)
    rows = [
        ("deployment", view.id),
        ("project", view.project),
        ("status", view.status.value),
        ("phase", reached(view)),
    ]
    if details.error and view.status is not Status.ACTIVE:
        rows.append(("reason", details.error))
    if details.url:
        rows.append(("url", details.url))
    rows += [("source", view.source), ("updated", when(view.updated_at))]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", escape(value))
    if verbose:
        for key, extra in view.metadata.items():
            text = extra if isinstance(extra, str) else json.dumps(extra)
            table.add_row(f"  {key}", escape(text))
    return table


def logs_json(entries: list[LogEntry]) -> str:
    """The `logs --json` document."""
    return json.dumps([e.model_dump(mode="json") for e in entries], indent=2)


def log_line(entry: LogEntry) -> str:
    """One log row as a line."""
    colour = {"error": "red", "warning": "yellow"}.get(entry.level, "cyan")
    stamp = entry.timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
    return (
        f"[dim]{stamp}[/] [{colour}]{entry.level:<7}[/] [bold]{entry.phase:<18}[/] "
        f"{escape(entry.message)}"
    )


def deployments_table(views: list[DeploymentView]) -> Table | str:
    """Deployments, newest first, each under its short id (its first 8 characters, which
    every command that takes an id accepts)."""
    if not views:
        return "no deployments"
    table = Table("id", "project", "status", "phase", "created", "source")
    for view in views:
        table.add_row(
            view.id[:8],
            view.project,
            view.status.value,
            reached(view),
            when(view.created_at),
            escape(view.source),
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


def stuck_table(found: list[Stuck]) -> Table | str:
    """Stuck deployments, oldest phase first, with what each is doing."""
    if not found:
        return "no stuck deployments"
    table = Table("deployment", "project", "phase", "since", "kind", "detail")
    for item in found:
        table.add_row(
            item.id,
            item.project,
            f"{item.phase.value} ({item.progress}%)",
            when(item.phase_updated_at),
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
    seconds left when it has one; return the last snapshot. Not on a terminal (a CI log),
    one line each time the deployment enters a phase instead."""
    if not console.is_terminal:
        return await _phase_lines(snapshots)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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
            bar.update(
                task,
                completed=view.progress,
                description=view.phase.value,
                eta=remaining(eta(view)),
            )
    return last


def remaining(left: float | None) -> str:
    """What the estimate says: seconds left, or that the phase runs longer than usual."""
    if left is None:
        return ""
    if left < 1:
        return "longer than usual"
    return f"about {left:.0f}s left"


_IN_ORDER: tuple[Phase, ...] = (Phase.QUEUED, *WORK_PHASES, Phase.ACTIVE)
"""Every deployment passes through these in order, each run or recorded as skipped."""


async def _phase_lines(snapshots: AsyncIterator[DeploymentView | None]) -> DeploymentView | None:
    """A line per phase the deployment enters, in order, with the progress it enters at (as
    its log's transitions say). Snapshots come a few times a second, so a phase that passed
    between two is printed when the next one is seen."""
    last: DeploymentView | None = None
    printed = -1

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    def through(index: int) -> None:
        nonlocal printed
        for phase in _IN_ORDER[printed + 1 : index + 1]:
            say(f"{phase.value} ({PROGRESS[phase]}%)")
        printed = max(printed, index)

    async for view in snapshots:
        if view is None:
            continue
        last = view
        if view.phase is Phase.FAILED:
            ended_in = view.details.failed_phase
            through(_IN_ORDER.index(ended_in or Phase.QUEUED))
            say(f"{view.status.value} in {reached(view)}" if ended_in else view.status.value)
            printed = len(_IN_ORDER)
            continue
        through(_IN_ORDER.index(view.phase))
    return last


def projects_table(found: list[ProjectSummary]) -> Table | str:
    """Projects with their health."""
    if not found:
        return "no projects"
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


def alerts_table(found: list[Alert]) -> Table | str:
    """Alerts, newest first."""
    if not found:
        return "no alerts"
    table = Table("id", "project", "kind", "raised", "delivered", "resolved", "message")
    for alert in found:
        table.add_row(
            str(alert.id),
            alert.project,
            alert.kind,
            when(alert.created_at),
            when(alert.delivered_at) if alert.delivered_at else "-",
            when(alert.resolved_at) if alert.resolved_at else "-",
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
    table.add_row("previews", "on" if source.previews else "off")
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


def previews_table(found: list[PreviewView]) -> Table | str:
    """Previews, each with where it answers, its newest deployment and its expiry."""
    if not found:
        return "no previews"
    table = Table("project", "preview", "url", "newest", "status", "expires")
    for view in found:
        table.add_row(
            view.project,
            view.name,
            view.url,
            (view.deployment_id or "-")[:8],
            view.status.value if view.status else "-",
            view.expires_at.isoformat(timespec="seconds") if view.expires_at else "-",
        )
    return table


def previews_json(found: list[PreviewView]) -> str:
    """The `ls --previews --json` document."""
    return "[" + ",".join(view.model_dump_json() for view in found) + "]"


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


def reconcile_summary(report: ReconcileReport) -> list[str]:
    """`slipway reconcile`: what the pass resolved and removed, a line each."""
    orphans, cleanup = report.orphans, report.cleanup
    lines = []
    if not orphans.locked:
        lines.append("orphans: skipped, another reconcile pass holds the lock")
    elif not orphans.resolved:
        lines.append("orphans: none")
    else:
        lines.append(f"orphans: {len(orphans.resolved)} resolved")
        lines += [f"  {deployment}: {how}" for deployment, how in orphans.resolved.items()]
    if not cleanup.locked:
        lines.append("cleanup: skipped, another reconcile pass holds the lock")
        return lines
    removed = {
        "releases": len(cleanup.releases),
        "work dirs": len(cleanup.work_dirs),
        "routes": len(cleanup.routes),
        "uploads": len(cleanup.uploads),
        "stored objects": cleanup.store_objects,
        "blobs": cleanup.blobs,
        "containers": len(cleanup.containers),
        "images": len(cleanup.images),
    }
    done = [f"{count} {what}" for what, count in removed.items() if count]
    lines.append(f"cleanup: removed {', '.join(done)}" if done else "cleanup: nothing to remove")
    return lines
