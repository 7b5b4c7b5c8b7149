"""/api/projects/{name}/logs: an app's own output, its last lines or as it prints them (as
server-sent events), its deployment's secrets masked."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.sse import EventSourceResponse, ServerSentEvent

from starter.applogs import AppLogsError, app_logs, follow_app_logs
from starter.http.auth import require_token
from starter.http.errors import COMMON, NOT_FOUND
from starter.http.fields import ProjectName
from starter.http.services import Shared
from starter.http.views import DURATION, duration

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["app logs"]
)

Name = Annotated[ProjectName, PathParam(description="Project name.")]


@router.get("/projects/{name}/logs", responses=NOT_FOUND)
async def project_logs(
    name: Name,
    services: Shared,
    tail: Annotated[int | None, Query(ge=1, le=10_000, description="The last N lines.")] = 100,
    since: Annotated[
        str | None, Query(pattern=DURATION, description="Only lines this recent: 10m, 2h...")
    ] = None,
) -> list[str]:
    """The serving container's last lines, oldest first."""
    window = duration(since) if since else None
    try:
        return await asyncio.to_thread(
            app_logs, services.settings, services.engine, name, tail, window
        )
    except AppLogsError as err:
        raise HTTPException(404, str(err)) from None


async def serving(name: Name, services: Shared) -> str:
    """The project, if it has a serving container here; else 404 before any stream opens."""
    try:
        await asyncio.to_thread(app_logs, services.settings, services.engine, name, 1, None)
    except AppLogsError as err:
        raise HTTPException(404, str(err)) from None
    return name


@router.get("/projects/{name}/logs/events", response_class=EventSourceResponse, responses=NOT_FOUND)
async def project_log_events(
    project: Annotated[str, Depends(serving)], services: Shared
) -> AsyncIterator[ServerSentEvent]:
    """The serving container's lines as it prints them (`line` events), until it stops."""
    async for line in follow_app_logs(services.settings, services.engine, project):
        yield ServerSentEvent(event="line", data=line)
