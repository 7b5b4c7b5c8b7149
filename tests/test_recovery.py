"""Retries and crashes change nothing about the outcome: no duplicate rows, no double copy."""

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from temporalio import activity
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.client import Client
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from slipway import queries
from slipway.layout import Layout
from slipway.phases import Phase, Status
from slipway.settings import Settings
from slipway.tables import deployment_logs
from slipway.workflow_ids import deployment_workflow_id
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    deploy,
    fetch,
    make_site,
    outcome,
    row,
    transitions,
    wait_for,
)
from tests.running import RunningWorker, worker_process


class _LoseFirstResult(ActivityInboundInterceptor):
    """Runs the real activity, then fails its first attempt as if the worker had died just
    before reporting: the retry must adopt the finished work."""

    inodes: dict[str, int] = {}  # noqa: RUF012

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        info = activity.info()
        if info.activity_type == "copy_files" and info.attempt == 1:
            deployment = input.args[0].deployment
            release = Layout(Path(os.environ["SLIPWAY_TEST_HOME"])).release(
                deployment.project, deployment.deployment_id
            )
            _LoseFirstResult.inodes = {
                p.name: p.stat().st_ino for p in release.rglob("*") if p.is_file()
            }
            raise RuntimeError("lost the result of the first attempt")
        return result


class LoseFirstResult(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LoseFirstResult(next)


async def test_activity_failing_once_is_retried_without_duplicates(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("SLIPWAY_TEST_HOME", str(settings.home))
    site = make_site(tmp_path / "site", "retried", extra_files=40)
    async with RunningWorker(client, settings, [LoseFirstResult()]):
        deployment_id = await deploy(client, settings, site, project)
        assert await outcome(client, deployment_id) is None
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    release = Layout(settings.home).release(project, deployment_id)
    after = {p.name: p.stat().st_ino for p in release.rglob("*") if p.is_file()}
    assert after == _LoseFirstResult.inodes, "the retry copied files again"
    assert row(engine, deployment_id).metadata["filesCopied"] == 41
    assert "retried" in fetch(settings, project).text


def _progress(engine: sa.Engine, deployment_id: str) -> tuple[str, int]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT phase, phase_progress FROM deployments WHERE id = :id"),
            {"id": deployment_id},
        ).first()
    return (found[0], found[1]) if found else ("", 0)


async def test_worker_killed_during_copying_files(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
) -> None:
    # A sticky timeout longer than the whole test: the second worker must not wait it out.
    settings = settings.model_copy(update={"sticky_timeout_seconds": 300.0})
    site = make_site(tmp_path / "site", "survived", extra_files=20000)
    first = worker_process(settings, "first-worker")
    try:
        deployment_id = await deploy(client, settings, site, project)

        def copying() -> bool:
            view = queries.get_deployment(engine, deployment_id)
            return view is not None and view.phase is Phase.COPYING_FILES

        await wait_for("copying_files to begin", copying, timeout=120)
    finally:
        first.kill()
    killed_at = _progress(engine, deployment_id)
    assert killed_at[0] == Phase.COPYING_FILES.value, "the kill must land during copying_files"

    second = worker_process(settings, "second-worker")
    try:
        assert await outcome(client, deployment_id) is None
    finally:
        second.stop()
    assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
    view = row(engine, deployment_id)
    assert view.status is Status.ACTIVE
    assert view.metadata["filesCopied"] == view.metadata["totalFiles"] == 20001
    # The second worker took the workflow over as it started: no workflow task waited on the
    # dead worker's sticky queue until it timed out.
    history = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    timeouts = [
        event.workflow_task_timed_out_event_attributes.timeout_type
        async for event in history.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    ]
    assert TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START not in timeouts
    with engine.connect() as conn:
        resumed = (
            conn.execute(
                sa.select(deployment_logs.c.message).where(
                    deployment_logs.c.deployment_id == deployment_id,
                    deployment_logs.c.message.like("Copying resumed%"),
                )
            )
            .scalars()
            .all()
        )
    assert len(resumed) <= 1, "one resumed attempt at most"
    layout = Layout(settings.home)
    assert sorted(p.name for p in layout.releases(project).iterdir()) == [deployment_id]
    assert "survived" in fetch(settings, project).text
    assert fetch(settings, project, "/assets/d39/f19999.txt").text == "survived file 19999\n"
