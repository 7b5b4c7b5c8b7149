"""The deployment an activity works on, named on its span (when tracing is on)."""

from collections.abc import Sequence
from typing import Any

from temporalio import worker

from slipway.models import DeploymentInput
from slipway.tracing import name_deployment


def deployment_of(args: Sequence[Any]) -> DeploymentInput | None:
    """The deployment an activity works on: its input, or its input's `deployment`."""
    if not args:
        return None
    first = args[0]
    if isinstance(first, DeploymentInput):
        return first
    found = getattr(first, "deployment", None)
    return found if isinstance(found, DeploymentInput) else None


class DeploymentAttributes(worker.Interceptor):
    """Names the deployment on the span of each activity that works on one."""

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _NamingInbound(next)


class _NamingInbound(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        deployment = deployment_of(input.args)
        if deployment is not None:
            name_deployment(deployment.deployment_id, deployment.project)
        return await self.next.execute_activity(input)
