"""How activities fail: a `PermanentError` (bad input, an unhealthy release) once, typed by
its kind, with its message a person can act on; anything else retries. Every failure carries
the attempt it happened on, for the failed phase's metadata. The work below this floor raises
plain errors; only here do they become Temporal's."""

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from slipway.errors import BadInputError, PermanentError
from slipway.models import DeploymentInput
from slipway.names import InvalidNameError, validate_deployment_id, validate_project_name


def check_names(deployment: DeploymentInput) -> None:
    """Refuse a deployment whose names could not safely become paths, tags or hosts, before
    anything acts on them."""
    try:
        validate_project_name(deployment.project)
        validate_deployment_id(deployment.deployment_id)
        validate_deployment_id(deployment.release)
        for other in (deployment.preview_of, deployment.release_from):
            if other:
                validate_project_name(other)
    except InvalidNameError as err:
        raise BadInputError(str(err)) from None


class _RecordAttempt(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except ApplicationError as err:
            attempt = {"attempt": activity.info().attempt}
            raise ApplicationError(
                err.message, attempt, type=err.type, non_retryable=err.non_retryable
            ) from err
        except PermanentError as err:
            attempt = {"attempt": activity.info().attempt}
            raise ApplicationError(str(err), attempt, type=err.kind, non_retryable=True) from err
        except Exception as err:
            attempt = {"attempt": activity.info().attempt}
            raise ApplicationError(
                str(err) or type(err).__name__, attempt, type=type(err).__name__
            ) from err


class AttemptInterceptor(Interceptor):
    """Adds `{"attempt": n}` to every activity failure's details, and fails a
    `PermanentError` for good."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RecordAttempt(next)
