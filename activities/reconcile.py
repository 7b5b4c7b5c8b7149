"""The reconciler's activities: orphaned deployments resolved once across all workers, and
each server's leftovers cleaned once across its workers, each under a PostgreSQL advisory
lock so two reconcilers started at once do the work once."""

import asyncio
import logging
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from docker.errors import DockerException
from temporalio import activity
from temporalio.client import Client

from activities.adapters.beat import Beat
from activities.adapters.docker import docker_client
from activities.heartbeat import heartbeating
from activities.upkeep import cleanup
from activities.upkeep.watermark import Watermark
from slipway import metrics, previews, queries
from slipway.diagnosis import Kind, diagnose_all
from slipway.locks import advisory_lock, try_lock, unlock
from slipway.models import (
    CleanupReport,
    DeploymentInput,
    DeploymentView,
    Mode,
    OrphanReport,
    PreviewRemoval,
    ReconcileInput,
)
from slipway.names import SITE_SEPARATOR, InvalidNameError, validate_deployment_id
from slipway.settings import Settings, host_task_queue
from slipway.submission import continuation, remove_preview, submit

ORPHANS_LOCK = "slipway:orphans"


log = logging.getLogger(__name__)


def _beat(view: DeploymentView) -> None:
    """Heartbeat as each diagnosis begins: a long pass stays alive and says where it is."""
    activity.heartbeat(view.id)


class ReconcileActivities:
    """Resolving orphans needs the database and Temporal; it runs on the shared queue."""

    def __init__(self, engine: sa.Engine, client: Client, settings: Settings) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings

    @activity.defn(name="resolve_orphans")
    async def resolve_orphans(self, inp: ReconcileInput) -> OrphanReport:
        """Find deployments whose row is in progress but whose workflow is gone, and resume
        or fail each by policy. Idempotent: the resolution goes through the project's
        serializer, which queues a deployment id once, and a resolved row is no longer in
        progress."""
        template = DeploymentInput(
            deployment_id="",
            project="",
            host_queue=inp.host_queue,
            heartbeat_timeout_seconds=self.settings.heartbeat_timeout_seconds,
        )
        conn = await asyncio.to_thread(self.engine.connect)
        held = False
        try:
            held = await asyncio.to_thread(try_lock, conn, ORPHANS_LOCK)
            if not held:
                return OrphanReport(locked=False)
            return await self._resolve(inp, template)
        finally:
            if held:
                await asyncio.to_thread(unlock, conn, ORPHANS_LOCK)
            await asyncio.to_thread(conn.close)

    async def _resolve(self, inp: ReconcileInput, template: DeploymentInput) -> OrphanReport:
        report = OrphanReport(locked=True)
        grace = timedelta(seconds=inp.orphan_grace_seconds)
        resume = inp.orphan_policy == "resume"
        found = dict.fromkeys(Kind, 0)
        try:
            views = await asyncio.to_thread(queries.in_progress, self.engine, grace)
            for diagnosis in await diagnose_all(self.client, views, _beat):
                found[diagnosis.kind] += 1
                if diagnosis.kind is Kind.ORPHANED:
                    await self._settle(diagnosis.view, diagnosis.detail, template, resume, report)
        finally:
            for kind, count in found.items():
                metrics.stuck.labels(kind.value).set(count)
        return report

    async def _settle(
        self,
        view: DeploymentView,
        detail: str,
        template: DeploymentInput,
        resume: bool,
        report: OrphanReport,
    ) -> None:
        """Resume or fail one orphaned deployment through its project's serializer."""
        deployment = continuation(
            view,
            template,
            Mode.DEPLOY if resume else Mode.ABANDON,
            detail,
            next_round=resume,
        ).model_copy(update=await asyncio.to_thread(previews.lineage, self.engine, view))
        await submit(self.client, self.settings.task_queue, deployment)
        outcome = "resumed" if resume else "failed"
        report.resolved[view.id] = f"{outcome}: {detail}"

    @activity.defn(name="expire_previews")
    async def expire_previews(self, inp: ReconcileInput) -> list[str]:
        """Send each of this server's previews not deployed for the preview time to live to
        its serializer for removal; returns them. Idempotent: a removal signalled twice
        removes once, and a removed preview is not found again."""
        ttl = timedelta(seconds=inp.preview_ttl_seconds)
        now = datetime.now(UTC)
        found = await asyncio.to_thread(previews.expired, self.engine, ttl, now)
        sent: list[str] = []
        for site, project, server in found:
            queue = host_task_queue(self.settings.task_queue, server or self.settings.server)
            if queue != inp.host_queue:
                continue
            removal = PreviewRemoval(
                site=site,
                project=project,
                name=site.removesuffix(f"{SITE_SEPARATOR}{project}"),
                reason=f"expired, not deployed for {ttl}",
                host_queue=queue,
            )
            await remove_preview(self.client, self.settings.task_queue, removal)
            sent.append(site)
        return sent


class CleanupActivities:
    """Cleaning a server's files runs on that server's own queue."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.layout = settings.layout
        self.watermark = Watermark(settings.cleanup_full_pass_seconds)

    @activity.defn(name="cleanup_host")
    async def cleanup_host(self, inp: ReconcileInput) -> CleanupReport:
        """Remove this server's leftovers (see `cleanup.clean`), once across its workers,
        looking at the projects whose deployments changed since this worker's last pass
        (see `watermark`). Idempotent: it only deletes, and a pass that did not finish
        leaves the watermark where it was, so the next looks at the same projects again."""

        def run(beat: Beat) -> CleanupReport:
            with advisory_lock(self.engine, f"slipway:cleanup:{inp.host_queue}") as held:
                if not held:
                    return CleanupReport(locked=False)
                plan = self.watermark.plan(
                    self.layout, inp, lambda since: queries.changed_since(self.engine, since)
                )
                waiting = queries.in_progress(self.engine, timedelta(0))
                records = cleanup.Records(
                    histories=lambda names: queries.histories(self.engine, names),
                    deployments=lambda names: work_deployments(self.engine, names),
                    waiting=waiting,
                )
                report = cleanup.clean(
                    self.layout, inp, records, beat.check, plan.projects, collect=plan.full
                )
                try:
                    report.containers, report.images = self._sweep({v.id for v in waiting}, beat)
                except DockerException as err:
                    log.warning("containers not swept: no Docker Engine answers (%s)", err)
                self.watermark.passed(plan, inp)
                return report

        return await heartbeating(run)

    def _sweep(self, waiting: set[str], beat: Beat) -> tuple[list[str], list[str]]:
        with docker_client(self.settings.docker_host) as client:
            return cleanup.sweep(client, self.layout, waiting, beat.check)


def work_deployments(engine: sa.Engine, names: Collection[str]) -> dict[str, DeploymentView]:
    """The recorded deployments among these work dirs' names (a name that is no deployment
    id has none)."""
    named = {}
    for name in names:
        try:
            named[validate_deployment_id(name)] = name
        except InvalidNameError:
            continue
    found = queries.deployments_among(engine, named)
    return {named[deployment_id]: view for deployment_id, view in found.items()}
