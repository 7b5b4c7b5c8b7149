"""Server-sent events: one deployment's transitions and log lines as they happen, and the
recent deployments' progress for the page's list.

A deployment's stream merges `starter.api.follow` (its row, each time it moves) with
`starter.api.follow_logs` (its new log rows). Each log event carries its row id as the event
id, so a reconnecting EventSource (which sends Last-Event-ID) resumes after the last line it
saw; the stream ends with an `end` event once the deployment has ended.
"""

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from slipway import queries
from slipway.models import DeploymentView
from starter import api
from starter.http.auth import require_token
from starter.http.deployments import MAX_ROW_ID, Recorded
from starter.http.errors import COMMON, NOT_FOUND
from starter.http.fields import ProjectName
from starter.http.services import Services, Shared
from starter.http.views import present

RETRY_MS = 2000
"""How long a disconnected EventSource waits before it reconnects."""

LIST_SIZE = 50
"""Deployments the list stream watches: the page's list."""

LIST_INTERVAL = 0.5
"""Seconds between two looks at the list: one query, however many pages watch."""

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["events"]
)


def _event(name: str, data: BaseModel, event_id: str | None = None) -> ServerSentEvent:
    """An event whose data is the model's JSON as the REST endpoints write it."""
    return ServerSentEvent(event=name, id=event_id, raw_data=data.model_dump_json(by_alias=True))


async def _merged(*sources: AsyncIterable[ServerSentEvent]) -> AsyncIterator[ServerSentEvent]:
    """Events of every source as each arrives, until all have ended; a failing source
    ends the stream with its error (the client reconnects and resumes)."""
    queue: asyncio.Queue[ServerSentEvent | BaseException | None] = asyncio.Queue()

    async def pump(source: AsyncIterable[ServerSentEvent]) -> None:
        try:
            async for event in source:
                await queue.put(event)
        except Exception as err:
            await queue.put(err)
        await queue.put(None)

    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _states(services: Services, deployment_id: str) -> AsyncIterator[ServerSentEvent]:
    client = await services.temporal()
    async for view in api.follow(client, services.engine, deployment_id):
        if view is not None:
            yield _event("state", await asyncio.to_thread(present, services, view))


async def _logs(
    services: Services, deployment_id: str, after: int
) -> AsyncIterator[ServerSentEvent]:
    client = await services.temporal()
    async for entry in api.follow_logs(client, services.engine, deployment_id, after):
        yield _event("log", entry, str(entry.id))


@router.get(
    "/deployments/{deployment_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND
)
async def deployment_events(
    view: Recorded,
    services: Shared,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Log rows after this id.")] = 0,
    last_event_id: Annotated[
        int | None, Header(ge=0, le=MAX_ROW_ID, description="Sent by a reconnecting EventSource.")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """`state` events (the deployment, as GET shows it) each time it moves, `log` events
    (one log row each, its id as the event id) as they are written (none when `after` is
    the largest row id: a client that wants only the states), then one `end` event with
    the deployment as it ended."""
    yield ServerSentEvent(comment=f"deployment {view.id}", retry=RETRY_MS)
    start = max(after, last_event_id or 0)
    # Past the last possible row there is no line to send: only the states are followed.
    lines = [] if start >= MAX_ROW_ID else [_logs(services, view.id, start)]
    async for event in _merged(_states(services, view.id), *lines):
        yield event
    final: DeploymentView | None = await asyncio.to_thread(api.status, services.engine, view.id)
    yield _event("end", await asyncio.to_thread(present, services, final or view))


@router.get("/events", response_class=EventSourceResponse)
async def list_events(
    services: Shared,
    project: Annotated[ProjectName | None, Query(description="Only this project's.")] = None,
) -> AsyncIterator[ServerSentEvent]:
    """A `deployment` event for each of the newest deployments when the stream opens and
    each time one of them moves or a new one is queued; it never ends by itself."""
    yield ServerSentEvent(comment="recent deployments", retry=RETRY_MS)
    seen: dict[str, tuple[object, ...]] = {}
    while True:
        views = await asyncio.to_thread(queries.recent, services.engine, project, None, LIST_SIZE)
        current: dict[str, tuple[object, ...]] = {
            view.id: (view.status, view.phase, view.progress, view.updated_at) for view in views
        }
        for view in reversed(views):
            if seen.get(view.id) != current[view.id]:
                yield _event("deployment", await asyncio.to_thread(present, services, view))
        seen = current
        await asyncio.sleep(LIST_INTERVAL)
