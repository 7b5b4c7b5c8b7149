"""The health monitor: every active deployment of this server looked at, an unhealthy
container restarted, a restart loop or an outage alerted once, and the alert delivered."""

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from docker.errors import DockerException
from temporalio import activity

from activities.adapters.beat import Beat
from activities.adapters.releases import current_release
from activities.adapters.traefik import is_stopped, public_target
from activities.heartbeat import heartbeating
from activities.upkeep import probes
from slipway import metrics, monitoring, queries, records
from slipway.models import DeliverInput, MonitorInput, MonitorReport, ProbeResult
from slipway.phases import Phase, Status
from slipway.project_health import ProjectHealth
from slipway.settings import Settings

log = logging.getLogger(__name__)

PROBES_AT_ONCE = 8
"""Projects a pass looks at concurrently (through the worker's one HTTP client): a project
that takes its whole timeout to answer holds up one of these, not the rest of the pass."""

Look = tuple[ProbeResult, Any | None]
"""What one probe saw: its verdict, and an app's container (None for a site, or gone)."""


class MonitorActivities:
    """Checks run on each server's own queue; alerts are delivered from the shared one."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.layout = settings.layout

    @activity.defn(name="check_server")
    async def check_server(self, inp: MonitorInput) -> MonitorReport:
        """Check every project this server serves; a stopped one is left alone (neither
        restarted nor alerted on). Idempotent enough to repeat: a check only reads, a restart
        is bounded by the restart window, and an alert is keyed by its episode, so a repeated
        pass raises nothing twice. The projects are looked at `PROBES_AT_ONCE` at a time; the
        pass reads every project's health in one query, and writes a project's health only
        when it changed; the check time of the others is written at the end, in one
        statement."""

        def run(beat: Beat) -> MonitorReport:
            report = MonitorReport()
            sites = sorted(self.layout.sites.iterdir()) if self.layout.sites.is_dir() else []
            recorded = monitoring.every_health(self.engine)
            unchanged: dict[str, str] = {}
            serving: dict[str, str] = {}
            for site in sites:
                beat.check()
                project = site.name
                if public_target(self.layout, project) is None:
                    continue
                release = current_release(self.layout, project)
                if release is None:
                    # Its first deployment routed it and has not switched yet: nothing serves.
                    continue
                if is_stopped(self.layout, project):
                    report.checked[project] = "stopped"
                    continue
                serving[project] = release

            def look(project: str) -> tuple[str | None, Look]:
                beat.check()
                release = serving[project]
                return release, probes.probe(self.settings, self.layout, project, release)

            looks = _each_at_once(list(serving), look)
            for project in serving:
                release, seen = looks[project]
                health = recorded.get(project) or ProjectHealth()
                self._check(project, release, seen, health, inp, report, unchanged)
            monitoring.mark_checked(self.engine, unchanged)
            return report

        return await heartbeating(run)

    def _check(
        self,
        project: str,
        release: str | None,
        seen: Look,
        health: ProjectHealth,
        inp: MonitorInput,
        report: MonitorReport,
        unchanged: dict[str, str],
    ) -> None:
        """One project, `health` as recorded, and what a look at its current `release` saw:
        heal (an app's container is restarted, up to the restart limit, then a restart-loop
        alert) or alert (a site that nothing can restart: down). A health that changed in
        nothing but its check time goes into `unchanged` (project → that time) instead of
        being written now."""
        now = datetime.now(UTC)
        if _still_healthy(health, release, seen):
            unchanged[project] = now.isoformat()
            report.checked[project] = health.status
            return
        was = _all_but_the_time(health) if health.last_check else None
        if health.release != release:
            monitoring.resolve_alerts(self.engine, project)
            health = ProjectHealth(release=release)
        window = now - timedelta(seconds=inp.restart_window_seconds)
        health.restarts = [t for t in health.restarts if datetime.fromisoformat(t) > window]
        verdict, container = seen
        self._count_engine_restarts(health, container, verdict.restarts, now)
        health.last_check = now.isoformat()
        health.detail = verdict.detail
        if verdict.ok:
            health.status, health.consecutive_failures, health.failing_since = "healthy", 0, None
        else:
            health.consecutive_failures += 1
            health.failing_since = health.failing_since or now.isoformat()
            if container is not None and not health.healing_paused:
                self._restart(project, container, health, inp, report, now)
            if container is None and health.consecutive_failures >= inp.down_after_failures:
                self._alert(
                    project,
                    "down",
                    f"{project}:{release}:down:{health.failing_since}",
                    f"{project} is down: {verdict.detail}",
                    health,
                    report,
                )
            down = health.healing_paused or (health.consecutive_failures >= inp.down_after_failures)
            health.status = "down" if down else "degraded"
        if _all_but_the_time(health) == was and health.last_check:
            unchanged[project] = health.last_check
        else:
            monitoring.save_health(self.engine, project, health)
        report.checked[project] = health.status

    def _count_engine_restarts(
        self, health: ProjectHealth, container: object, restarts: int, now: datetime
    ) -> None:
        """Count the restarts Docker made on its own (`unless-stopped` brings a crashed app
        back) since the last look, as restarts now, so that a container Docker keeps
        restarting makes a restart loop as one the monitor restarts does."""
        seen = getattr(container, "id", None)
        if seen is None:
            return
        if seen == health.container and restarts > health.engine_restarts:
            health.restarts += [now.isoformat()] * (restarts - health.engine_restarts)
        health.container, health.engine_restarts = str(seen), restarts

    def _restart(
        self,
        project: str,
        container: object,
        health: ProjectHealth,
        inp: MonitorInput,
        report: MonitorReport,
        now: datetime,
    ) -> None:
        """Restart an unhealthy container; the restart that completes a loop pauses healing
        and raises the loop's alert instead."""
        if len(health.restarts) >= inp.restart_limit:
            health.healing_paused = True
            self._alert(
                project,
                "restart-loop",
                f"{project}:{health.release}:restart-loop:{health.restarts[0]}",
                f"{project} restarted {len(health.restarts)} times in "
                f"{inp.restart_window_seconds:g}s and is still unhealthy: healing paused until "
                f"a new deployment or `slipway heal {project}`",
                health,
                report,
            )
            return
        try:
            container.restart(timeout=5)  # type: ignore[attr-defined]
        except DockerException as err:
            log.warning("restarting %s failed: %s", project, err)
            return
        health.restarts.append(now.isoformat())
        metrics.monitor_restarts.inc()
        report.restarted.append(project)
        self._note(
            project,
            f"Monitor restarted the unhealthy container ({health.detail}); restart "
            f"{len(health.restarts)} of {inp.restart_limit} in the window",
            "warning",
        )

    def _alert(
        self,
        project: str,
        kind: str,
        episode: str,
        message: str,
        health: ProjectHealth,
        report: MonitorReport,
    ) -> None:
        """Raise the episode's alert; once per episode, however many passes see it."""
        alert_id = monitoring.raise_alert(
            self.engine, project, kind, episode, message, {"detail": health.detail}
        )
        if alert_id is not None:
            report.alerts.append(alert_id)
            self._note(project, f"Alert raised: {message}", "error")
            log.error("alert %d: %s", alert_id, message)

    def _note(self, project: str, message: str, level: str) -> None:
        """A line in the log of the deployment serving the project."""
        for view in queries.project_history(self.engine, project):
            if view.status is Status.ACTIVE:
                records.add_log(self.engine, view.id, Phase.ACTIVE, message, level=level)
                return

    @activity.defn(name="deliver_alert")
    async def deliver_alert(self, inp: DeliverInput) -> None:
        """POST an alert to the webhook; a refusal raises so Temporal retries with backoff.
        Delivering twice is possible after a crash; the alert id lets the receiver tell."""
        alert = await asyncio.to_thread(monitoring.get_alert, self.engine, inp.alert_id)
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(inp.url, content=alert.model_dump_json())
            answer.raise_for_status()
        await asyncio.to_thread(monitoring.mark_delivered, self.engine, inp.alert_id)


def _each_at_once(
    projects: list[str], look: Callable[[str], tuple[str | None, Look]]
) -> dict[str, tuple[str | None, Look]]:
    """`look` at every project, `PROBES_AT_ONCE` at a time: as many threads, each taking the
    next project once it is done with one (a future per project cost more CPU than the
    probe itself). The first error of any look is raised once all have stopped."""
    pending = iter(projects)
    taking = threading.Lock()
    seen: dict[str, tuple[str | None, Look]] = {}

    def work() -> None:
        while True:
            with taking:
                project = next(pending, None)
            if project is None:
                return
            seen[project] = look(project)

    with ThreadPoolExecutor(PROBES_AT_ONCE, thread_name_prefix="probe") as pool:
        workers = [pool.submit(work) for _ in range(min(PROBES_AT_ONCE, len(projects)))]
    for worker in workers:
        worker.result()
    return seen


def _still_healthy(health: ProjectHealth, release: str | None, seen: Look) -> bool:
    """True if a site found healthy last time, with nothing restarted in the window, is
    found healthy again in the same release with the same detail: the full check would
    change nothing of its health but the check time (the common case, decided without it)."""
    verdict, container = seen
    return (
        verdict.ok
        and container is None
        and health.last_check is not None
        and health.status == "healthy"
        and health.release == release
        and health.detail == verdict.detail
        and not health.restarts
        and health.consecutive_failures == 0
        and health.failing_since is None
    )


def _all_but_the_time(health: ProjectHealth) -> dict[str, object]:
    """What a check found, without when: two checks that found the same compare equal."""
    return health.model_dump(exclude={"last_check"})
