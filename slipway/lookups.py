"""What one listing of deployments asks Temporal about the things they share: a task queue's
pollers, a project's serializer. Many stuck deployments share a few queues and projects;
asking once per deployment made a long listing take seconds per row. A `Lookups` lives for
one listing (a worker that comes or goes shows in the next one), and deployments diagnosed
at once wait on the same question rather than each asking it."""

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from datetime import timedelta
from typing import TypeVar

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from slipway.temporal import has_pollers
from slipway.workflow_ids import project_workflow_id

QUERY_WITHIN = timedelta(seconds=3)
"""How long a project's serializer is given to answer where its deployments stand: a live
worker answers at once; without one, Temporal would hold the question for a minute."""

Held = frozenset[str] | None
"""The deployments a project's serializer holds, queued or running (none when it does not
run); None when it runs but no worker answers for it."""


K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def _once(
    asked: dict[K, "asyncio.Task[T]"], key: K, ask: Callable[[], Coroutine[object, object, T]]
) -> "asyncio.Task[T]":
    """The answer to `key`'s question, asked by the first caller and shared by the rest."""
    if key not in asked:
        asked[key] = asyncio.ensure_future(ask())
    return asked[key]


class Lookups:
    """Temporal's answers for one listing, each asked once."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._pollers: dict[tuple[str, bool], asyncio.Task[bool]] = {}
        self._held: dict[str, asyncio.Task[Held]] = {}
        self._answers: dict[str, asyncio.Task[Held]] = {}
        """Per task queue, the state of the first serializer asked there."""

    async def has_pollers(self, task_queue: str, *, activities: bool = False) -> bool:
        """Whether some worker polled `task_queue` recently (see `slipway.temporal`)."""
        return await _once(
            self._pollers,
            (task_queue, activities),
            lambda: has_pollers(self.client, task_queue, activities=activities),
        )

    async def held(self, project: str) -> Held:
        """What the project's serializer holds (see `Held`)."""
        return await _once(self._held, project, lambda: self._ask_serializer(project))

    async def _ask_serializer(self, project: str) -> Held:
        """Only a running serializer is asked. The first serializer asked on a task queue
        stands for the queue: if it does not answer, no other one there is asked, so a
        listing waits `QUERY_WITHIN` once per silent queue, not once per project."""
        handle = self.client.get_workflow_handle(project_workflow_id(project))
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return frozenset()
            raise
        if described.status is not WorkflowExecutionStatus.RUNNING:
            return frozenset()
        queue = described.task_queue
        first = self._answers.get(queue)
        if first is None:
            return await _once(self._answers, queue, lambda: self._state(handle))
        if await first is None:
            return None
        return await self._state(handle)

    async def _state(self, handle: WorkflowHandle[object, object]) -> Held:
        """The serializer's own answer: None if it gives none in time; none held if it
        refuses the question (it is closing)."""
        try:
            state = await handle.query("state", rpc_timeout=QUERY_WITHIN)
        except RPCError as err:
            if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                return None
            return frozenset()
        running = state.get("running")
        return frozenset([*state.get("queued", []), *([running] if running else [])])
