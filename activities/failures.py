"""How activities fail: bad input once, with a message a person can act on; anything else
retries. Every failure carries the attempt it happened on, for the failed phase's metadata."""

from typing import Any, NoReturn

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

BAD_INPUT = "BadInput"


def bad_input(message: str) -> NoReturn:
    """Fail the activity for good: retrying cannot fix what was asked."""
    raise ApplicationError(message, type=BAD_INPUT, non_retryable=True)


class _RecordAttempt(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except ApplicationError as err:
            attempt = {"attempt": activity.info().attempt}
            raise ApplicationError(
                err.message, attempt, type=err.type, non_retryable=err.non_retryable
            ) from err
        except Exception as err:
            attempt = {"attempt": activity.info().attempt}
            raise ApplicationError(
                str(err) or type(err).__name__, attempt, type=type(err).__name__
            ) from err


class AttemptInterceptor(Interceptor):
    """Adds `{"attempt": n}` to every activity failure's details."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RecordAttempt(next)
