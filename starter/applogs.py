"""An app's own output, for `slipway logs PROJECT --app` and the API: the project's serving
container, found on this server's Docker Engine, its lines with the serving deployment's
environment's values masked."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from activities.adapters.app_output import last_lines, new_lines
from activities.adapters.docker import LABEL_DEPLOYMENT, docker_client
from activities.upkeep.probes import serving_container
from slipway.env_versions import recorded_env
from slipway.environment import EnvError
from slipway.names import validate_project_name
from slipway.secrets import SecretError, load_key
from slipway.settings import Settings


class AppLogsError(LookupError):
    """The project has no container to read: the message says why."""


def _serving(client: Any, settings: Settings, project: str) -> Any:
    container = serving_container(client, settings.layout, validate_project_name(project))
    if container is None:
        raise AppLogsError(
            f"{project} has no serving container on this server (a static site, not deployed "
            "yet, or served from another server)"
        )
    return container


def _secrets(settings: Settings, engine: sa.Engine, container: Any) -> list[str]:
    """The serving deployment's environment values: its version's and its own."""
    deployment_id = container.labels.get(LABEL_DEPLOYMENT, "")
    try:
        return list(recorded_env(engine, load_key(settings), deployment_id).values())
    except (SecretError, EnvError):
        return []


def app_logs(
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tail: int | None = None,
    since: timedelta | None = None,
) -> list[str]:
    """The serving container's last lines (blocking: call it on a thread from async code)."""
    with docker_client(settings.docker_host) as client:
        container = _serving(client, settings, project)
        secrets = _secrets(settings, engine, container)
        moment = datetime.now(UTC) - since if since is not None else None
        return last_lines(container, tail, moment, secrets)


async def follow_app_logs(
    settings: Settings, engine: sa.Engine, project: str
) -> AsyncIterator[str]:
    """The serving container's lines as it prints them, until it stops or the caller stops
    listening; the blocking read runs on a thread and hands lines over a queue."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    stop = False

    def read() -> None:
        try:
            with docker_client(settings.docker_host) as client:
                container = _serving(client, settings, project)
                for line in new_lines(container, _secrets(settings, engine, container)):
                    if stop:
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, line)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    reader = asyncio.ensure_future(asyncio.to_thread(read))
    try:
        while (line := await queue.get()) is not None:
            yield line
        await reader
    finally:
        stop = True
