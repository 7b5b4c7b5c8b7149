"""MonitorWorkflow: run by a Schedule (overlap: skip), one health pass over a server's active
deployments and its custom domains' certificates, then each new alert delivered to the
webhook."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.monitor import MonitorActivities
    from activities.routing import RoutingActivities
    from slipway.models import DeliverInput, MonitorInput, MonitorReport

DELIVERY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
)
"""A webhook that refuses is tried again with backoff, six times in all."""

CERTIFICATES_PATCH = "certificates"
"""Marks the passes that also look at the custom domains' certificates."""


@workflow.defn(name="MonitorWorkflow")
class MonitorWorkflow:
    """One monitor pass; an alert whose webhook never accepts it stays recorded."""

    @workflow.run
    async def run(self, inp: MonitorInput) -> MonitorReport:
        report = await workflow.execute_activity_method(
            MonitorActivities.check_server,
            inp,
            task_queue=inp.host_queue,
            schedule_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=2),
            summary=f"check {inp.host_queue}",
        )
        if workflow.patched(CERTIFICATES_PATCH):
            try:
                certificates = await workflow.execute_activity_method(
                    RoutingActivities.check_certificates,
                    inp,
                    task_queue=inp.host_queue,
                    schedule_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(maximum_attempts=2),
                    summary=f"certificates {inp.host_queue}",
                )
                report.alerts.extend(certificates.alerts)
            except ActivityError:
                workflow.logger.warning("the certificates of %s were not checked", inp.host_queue)
        workflow.set_current_details(
            f"checked {len(report.checked)}, restarted {len(report.restarted)}, "
            f"alerts {len(report.alerts)}"
        )
        if inp.webhook_url:
            for alert_id in report.alerts:
                try:
                    await workflow.execute_activity_method(
                        MonitorActivities.deliver_alert,
                        DeliverInput(alert_id=alert_id, url=inp.webhook_url),
                        schedule_to_close_timeout=timedelta(minutes=10),
                        retry_policy=DELIVERY,
                        summary=f"deliver alert {alert_id}",
                    )
                except ActivityError:
                    workflow.logger.warning("alert %d was not delivered", alert_id)
        return report
