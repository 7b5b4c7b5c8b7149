"""The health monitor: every active deployment of this server looked at, an unhealthy
container restarted, a restart loop or an outage alerted once, and the alert delivered."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

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
from slipway.models import DeliverInput, MonitorInput, MonitorReport
from slipway.phases import Phase, Status
from slipway.project_health import ProjectHealth
from slipway.settings import Settings

log = logging.getLogger(__name__)


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
        pass raises nothing twice."""

        def run(beat: Beat) -> MonitorReport:
            report = MonitorReport()
            sites = sorted(self.layout.sites.iterdir()) if self.layout.sites.is_dir() else []
            for site in sites:
                beat.check()
                project = site.name
                if public_target(self.layout, project) is None:
                    continue
                if is_stopped(self.layout, project):
                    report.checked[project] = "stopped"
                    continue
                self._check(project, inp, report)
            return report

        return await heartbeating(run)

    def _check(self, project: str, inp: MonitorInput, report: MonitorReport) -> None:
        """One project: look, then heal (an app's container is restarted, up to the restart
        limit, then a restart-loop alert) or alert (a site that nothing can restart: down)."""
        now = datetime.now(UTC)
        release = current_release(self.layout, project)
        health = monitoring.health_of(self.engine, project)
        if health.release != release:
            monitoring.resolve_alerts(self.engine, project)
            health = ProjectHealth(release=release)
        window = now - timedelta(seconds=inp.restart_window_seconds)
        health.restarts = [t for t in health.restarts if datetime.fromisoformat(t) > window]
        verdict, container = probes.probe(self.settings, self.layout, project)
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
