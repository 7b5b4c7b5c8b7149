"""Shared steps of the tests: make a site, deploy it, wait, fetch it through Traefik."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import sqlalchemy as sa
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from slipway import queries
from slipway.models import DeploymentView
from slipway.settings import Settings
from slipway.tables import deployment_logs
from slipway.workflow_ids import deployment_workflow_id
from starter import api


def make_site(root: Path, text: str, extra_files: int = 0) -> Path:
    """A static site whose index.html says `text`, with `extra_files` more distinct files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"<h1>{text}</h1>\n")
    for i in range(extra_files):
        sub = root / "assets" / f"d{i // 500}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"{text} file {i}\n")
    return root


async def deploy(client: Client, settings: Settings, path: Path, project: str, **kw: str) -> str:
    """Start a deployment through the Python API."""
    return await api.start_deployment(client, settings, path, project, **kw)


async def outcome(client: Client, deployment_id: str, timeout: float = 120.0) -> str | None:
    """Wait for the deployment's workflow (which its project's serializer may not have
    started yet); None when it succeeded, else its failure message."""
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await handle.result()
        except WorkflowFailureError as err:
            return str(err.cause)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            assert asyncio.get_running_loop().time() < deadline, f"{deployment_id} never started"
            await asyncio.sleep(0.1)
            continue
        return None


async def deploy_and_wait(
    client: Client, settings: Settings, path: Path, project: str, **kw: str
) -> tuple[str, str | None]:
    """Deploy and wait; returns the id and the failure message (None on success)."""
    deployment_id = await deploy(client, settings, path, project, **kw)
    return deployment_id, await outcome(client, deployment_id)


def fetch(settings: Settings, project: str, path: str = "/") -> httpx.Response:
    """GET through Traefik with the project's Host."""
    return httpx.get(
        f"http://127.0.0.1:{settings.http_port}{path}",
        headers={"Host": settings.project_host(project)},
        timeout=5.0,
    )


def transitions(engine: sa.Engine, deployment_id: str) -> list[str]:
    """The deployment's transition log lines, in order."""
    query = (
        sa.select(deployment_logs.c.message)
        .where(
            deployment_logs.c.deployment_id == deployment_id,
            deployment_logs.c.event_key.like("transition:%"),
        )
        .order_by(deployment_logs.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def row(engine: sa.Engine, deployment_id: str) -> DeploymentView:
    """The deployment's row, which must exist."""
    view = queries.get_deployment(engine, deployment_id)
    assert view is not None, f"no row for {deployment_id}"
    return view


async def wait_for(what: str, check: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `check()` until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


SUCCESS_TRANSITIONS = [
    "Phase transition: queued (0%)",
    "Phase transition: pulling_source (10%)",
    "Phase transition: building (30%)",
    "Phase transition: copying_files (50%)",
    "Phase transition: creating_symlinks (70%)",
    "Phase transition: updating_routes (80%)",
    "Phase transition: health_check (90%)",
    "Phase transition: active (100%)",
]
