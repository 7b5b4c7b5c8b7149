"""Stuck deployments classified against Temporal, and phase deadlines that act."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client, WorkflowHandle

from slipway import queries
from slipway.diagnosis import Kind, diagnose
from slipway.layout import Layout
from slipway.lookups import Held, Lookups
from slipway.phases import Phase, Status
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id
from tests.helpers import deploy, deploy_and_wait, fetch, make_site, row, wait_for
from tests.running import RunningWorker


def _ghost(settings: Settings, **update: object) -> Settings:
    """The same shared queue, but a server nobody runs: its host-bound work waits."""
    return settings.model_copy(update={"server": f"ghost{uuid.uuid4().hex[:6]}", **update})


async def test_deployment_on_a_server_with_no_worker_is_no_worker(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    waiting = await deploy(client, _ghost(settings), make_site(tmp_path / "s", "never"), project)
    await wait_for("the row", lambda: queries.get_deployment(engine, waiting) is not None)
    for _ in range(100):
        stuck = queries.find_stuck(engine, timedelta(0), queries.WAITING)
        view = next(v for v in stuck if v.id == waiting)
        found = await diagnose(client, view)
        if found.kind is Kind.NO_WORKER:
            break
        await asyncio.sleep(0.1)
    assert found.kind is Kind.NO_WORKER
    # The deployment's workflow runs on its server's queue, beside its phases: it waits.
    assert "workflow waits" in found.detail and "ghost" in found.detail
    await client.get_workflow_handle(view.workflow_id).terminate("test over")


async def test_heartbeating_deployment_is_slow(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    busy = await deploy(client, settings, make_site(tmp_path / "s", "busy", 20000), project)

    def copying() -> bool:
        view = queries.get_deployment(engine, busy)
        return view is not None and view.phase is Phase.COPYING_FILES

    await wait_for("copying", copying, timeout=120)
    stuck = queries.find_stuck(engine, timedelta(0))
    found = await diagnose(client, next(v for v in stuck if v.id == busy))
    assert found.kind is Kind.SLOW
    assert "copy_files" in found.detail
    # The diagnosis is what is tested; the big copy's end is other tests' business.
    await client.get_workflow_handle(deployment_workflow_id(busy)).terminate("test over")


async def test_phase_past_its_deadline_fails_and_keeps_serving(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    old, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "a", "old"), project
    )
    assert failure is None
    # Unpacking and hashing 20,000 files takes longer than a tenth of a second.
    late = settings.model_copy(update={"phase_deadlines": {"pulling_source": 0.1}})
    site = make_site(tmp_path / "b", "new", extra_files=20000)
    new, failure = await deploy_and_wait(client, late, site, project)
    assert failure is not None and "phase deadline exceeded: pulling_source" in failure
    view = row(engine, new)
    assert view.status is Status.FAILED
    assert view.metadata["error"] == "phase deadline exceeded: pulling_source"
    assert Layout(settings.home).current(project).readlink().name == old
    assert "old" in fetch(settings, project).text


class _Asking(Lookups):
    """Lookups that keep the serializers they put the question to."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.asked: list[str] = []

    async def _state(self, handle: WorkflowHandle[object, object]) -> Held:
        self.asked.append(handle.id)
        return await super()._state(handle)


async def test_a_listing_waits_once_on_a_queue_no_worker_answers(client: Client) -> None:
    # Serializers that run on a task queue nobody polls never answer: the first one asked
    # there stands for the queue, and the next is not asked (nor waited on) again.
    silent = f"silent-{uuid.uuid4().hex[:8]}"
    names = [f"silent-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    handles = [
        await client.start_workflow(
            "ProjectWorkflow", id=project_workflow_id(name), task_queue=silent
        )
        for name in names
    ]
    try:
        lookups = _Asking(client)
        assert await lookups.held(names[0]) is None
        assert await lookups.held(names[1]) is None
        assert await lookups.held(names[0]) is None
        assert lookups.asked == [project_workflow_id(names[0])]
        # Another listing asks again: a worker may have come since.
        again = _Asking(client)
        assert await again.held(names[1]) is None
        assert again.asked == [project_workflow_id(names[1])]
    finally:
        for handle in handles:
            await handle.terminate("test over")
