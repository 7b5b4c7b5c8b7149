"""ReconcileWorkflow: run by a Schedule (overlap: skip), it resolves orphaned deployments and
cleans one server's leftovers."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconcile import CleanupActivities, ReconcileActivities
    from slipway.models import ReconcileInput, ReconcileReport

EXPIRY_PATCH = "preview-expiry"
"""Marks the histories in which a pass sends expired previews for removal."""

_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)


@workflow.defn(name="ReconcileWorkflow")
class ReconcileWorkflow:
    """One reconcile pass; two passes at once do the work once (advisory locks). Every step
    has a deadline, so a pass waiting on a dead server ends and the Schedule (which skips
    while a pass runs) goes on."""

    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileReport:
        orphans = await workflow.execute_activity_method(
            ReconcileActivities.resolve_orphans,
            inp,
            schedule_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
            summary="resolve orphaned deployments",
        )
        cleanup = await workflow.execute_activity_method(
            CleanupActivities.cleanup_host,
            inp,
            task_queue=inp.host_queue,
            schedule_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=_RETRY,
            summary=f"clean up {inp.host_queue}",
        )
        expired: list[str] = []
        if workflow.patched(EXPIRY_PATCH):
            expired = await workflow.execute_activity_method(
                ReconcileActivities.expire_previews,
                inp,
                schedule_to_close_timeout=timedelta(minutes=5),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=_RETRY,
                summary="expire previews",
            )
        workflow.set_current_details(
            f"orphans resolved: {len(orphans.resolved)}; removed {len(cleanup.releases)} "
            f"releases, {len(cleanup.work_dirs)} work dirs, {cleanup.store_objects} objects"
        )
        return ReconcileReport(orphans=orphans, cleanup=cleanup, expired_previews=expired)
