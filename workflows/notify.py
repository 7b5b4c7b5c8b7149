"""NotifyWorkflow: a deployment's end delivered to its webhook, apart from the deployment, so
a webhook that is down never holds up the project's next deployment."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from slipway.models import EndNotice

DELIVERY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=8,
)
"""A webhook that refuses is tried again with backoff, eight times in all."""


@workflow.defn(name="NotifyWorkflow")
class NotifyWorkflow:
    """One notification; one that is never accepted ends with a warning, not a failure."""

    @workflow.run
    async def run(self, notice: EndNotice) -> bool:
        try:
            return await workflow.execute_activity_method(
                NotifyActivities.notify_end,
                notice,
                schedule_to_close_timeout=timedelta(minutes=15),
                retry_policy=DELIVERY,
                summary=f"{notice.project}: {notice.status.value}",
            )
        except ActivityError:
            workflow.logger.warning("the end of %s was not delivered", notice.deployment_id)
            return False
