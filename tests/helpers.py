"""Shared steps of the tests: make a site, deploy it, wait, fetch it through Traefik."""

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from slipway import queries
from slipway.models import DeploymentView
from slipway.phases import Status
from slipway.settings import Settings
from slipway.tables import deployment_logs, deployments, projects
from slipway.temporal import workflow_status
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id
from starter import api
from tests.components import free_port


def make_site(root: Path, text: str, extra_files: int = 0) -> Path:
    """A static site whose index.html says `text`, with `extra_files` more distinct files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"<h1>{text}</h1>\n")
    for i in range(extra_files):
        sub = root / "assets" / f"d{i // 500}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"{text} file {i}\n")
    return root


async def deploy(client: Client, settings: Settings, path: Path, project: str, **kw: Any) -> str:
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
    client: Client, settings: Settings, path: Path, project: str, **kw: Any
) -> tuple[str, str | None]:
    """Deploy and wait; returns the id and the failure message (None on success)."""
    deployment_id = await deploy(client, settings, path, project, **kw)
    return deployment_id, await outcome(client, deployment_id)


def broken_static(settings: Settings, health_timeout: float) -> Settings:
    """A second server whose static port points nowhere: its candidates never become
    healthy, and the public route keeps serving what it served."""
    return settings.model_copy(
        update={
            "task_queue": settings.task_queue + "-broken",
            "static_port": free_port(),
            "health_timeout_seconds": health_timeout,
        }
    )


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


ANCIENT_DAYS = 3000
"""How long ago `ancient_stuck` deployments last moved: longer than any other test's."""


@contextmanager
def ancient_stuck(engine: sa.Engine, statuses: list[str]) -> Iterator[list[str]]:
    """Deployments of a new project, one per status, in the same phase for more than
    `ANCIENT_DAYS` and without a workflow; yields their ids oldest first, as the stuck
    listing orders them (the second and third moved at the same moment, so their ids order
    them), and removes them after."""
    name = f"ancient-{uuid.uuid4().hex[:8]}"
    ages = [len(statuses) - i + (i > 1) for i in range(len(statuses))]
    planted = [(age, str(uuid.uuid4()), status) for age, status in zip(ages, statuses, strict=True)]
    with engine.begin() as conn:
        project_id = conn.execute(
            sa.insert(projects)
            .values(name=name, domain=f"{name}.localhost")
            .returning(projects.c.id)
        ).scalar_one()
        for age, deployment_id, status in planted:
            conn.execute(
                sa.insert(deployments).values(
                    id=deployment_id,
                    project_id=project_id,
                    status=status,
                    phase="queued" if status == "queued" else "copying_files",
                    workflow_id=deployment_workflow_id(deployment_id),
                    phase_updated_at=sa.func.now() - timedelta(days=ANCIENT_DAYS, minutes=age),
                )
            )
    try:
        yield [
            deployment_id for _, deployment_id, _ in sorted(planted, key=lambda p: (-p[0], p[1]))
        ]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.delete(deployments).where(deployments.c.project_id == project_id))
            conn.execute(sa.delete(projects).where(projects.c.id == project_id))


def started(engine: sa.Engine, deployment_id: str) -> bool:
    """True once the deployment has left the queue."""
    view = queries.get_deployment(engine, deployment_id)
    return view is not None and view.status is not Status.QUEUED


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


class Watcher:
    """Polls a project's site through Traefik in the background, keeping every answer, to
    show what visitors saw while something happened."""

    def __init__(self, settings: Settings, project: str) -> None:
        self.url = f"http://127.0.0.1:{settings.http_port}/"
        self.host = settings.project_host(project)
        self.answers: list[tuple[int, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        async with httpx.AsyncClient(headers={"Host": self.host}, timeout=5.0) as http:
            while True:
                answer = await http.get(self.url)
                self.answers.append((answer.status_code, answer.text))
                await asyncio.sleep(0.03)

    async def __aenter__(self) -> "Watcher":
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def saw_only(self, text: str) -> bool:
        """True if every answer was a 200 containing `text` (and there were answers)."""
        return bool(self.answers) and all(
            status == 200 and text in body for status, body in self.answers
        )


async def workflows_of(client: Client, project: str, deployment_ids: Iterable[str]) -> list[str]:
    """The workflow ids of these deployments of the project, and its serializer's if it
    ever ran (only a deployment that arrives while another runs starts it)."""
    ids = [deployment_workflow_id(d) for d in deployment_ids]
    if await workflow_status(client, project_workflow_id(project)) is None:
        return ids
    return [*ids, project_workflow_id(project)]
