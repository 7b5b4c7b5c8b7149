"""The project's turn, for its serializer: taken once no deployment started directly runs
(shared queue: the database and the Temporal server, no server's files)."""

from collections.abc import Callable

import sqlalchemy as sa
from temporalio import activity
from temporalio.client import Client

from slipway import turns
from slipway.models import TurnAnswer, TurnRequest


class TurnActivities:
    """Taking a project's turn."""

    def __init__(self, engine: sa.Engine, client: Client) -> None:
        self.engine = engine
        self.client = client

    @activity.defn(name="take_turn")
    async def take_turn(self, request: TurnRequest) -> TurnAnswer:
        """Wait for the deployment that holds the project's turn to end (cancelling it first
        if asked), then give the turn to the serializer. Idempotent: the turn moves only
        from a holder whose workflow has closed, and a serializer that holds it already
        finds it its own."""
        holder = await turns.wait_for_turn(
            self.client,
            self.engine,
            request.project,
            within=request.within_seconds,
            cancel=request.cancel,
            beat=activity.heartbeat,
        )
        return TurnAnswer(holder=holder)

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [self.take_turn]
