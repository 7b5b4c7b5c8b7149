"""Resume: a failed deployment continues from its first unfinished phase; the phases it had
finished are verified and skipped, not redone."""

from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import Layout
from slipway.phases import Status
from slipway.settings import Settings
from starter import api
from tests.components import free_port
from tests.helpers import deploy_and_wait, fetch, make_site, outcome, row, wait_for
from tests.running import RunningWorker


async def test_failed_deployment_resumes_from_its_first_unfinished_phase(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    broken = settings.model_copy(
        update={
            "server": "broken",
            "static_port": free_port(),
            "health_timeout_seconds": 1.0,
        }
    )
    async with RunningWorker(client, broken, host_only=True):
        failed, failure = await deploy_and_wait(
            client, broken, make_site(tmp_path / "s", "resumed", 30), project
        )
    assert failure is not None
    assert row(engine, failed).metadata["failedPhase"] == "health_check"
    release = Layout(settings.home).release(project, failed)
    inodes = {p: p.stat().st_ino for p in release.rglob("*") if p.is_file()}

    # The operator fixes the server's configuration, then resumes: on the same server.
    fixed = settings.model_copy(update={"server": "broken"})
    async with RunningWorker(client, fixed, host_only=True):
        assert await api.resume(client, settings, engine, failed) == failed
        await wait_for("the resumed run", lambda: row(engine, failed).status is not Status.FAILED)
        assert await outcome(client, failed) is None
    view = row(engine, failed)
    assert view.status is Status.ACTIVE
    assert view.metadata["round"] == 1
    messages = [e.message for e in queries.get_logs(engine, failed)]
    ended = [m for m in messages if m.startswith("Failed in health_check: ")]
    assert messages[messages.index(ended[0]) - 1] == "Phase transition: failed (90%)"
    tail = messages[messages.index(ended[0]) + 1 :]
    assert tail == [
        "Phase pulling_source verified and skipped: finished before resume",
        "Phase building verified and skipped: finished before resume",
        "Phase copying_files verified and skipped: finished before resume",
        "Phase transition: creating_symlinks (70%)",
        "Phase transition: updating_routes (80%)",
        "Phase transition: health_check (90%)",
        "Phase transition: active (100%)",
    ]
    assert {p: p.stat().st_ino for p in release.rglob("*") if p.is_file()} == inodes
    assert "resumed" in fetch(settings, project).text


async def test_only_ended_deployments_resume(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    done, _ = await deploy_and_wait(client, settings, make_site(tmp_path / "s", "x"), project)
    try:
        await api.resume(client, settings, engine, done)
    except api.DeploymentError as err:
        assert "active" in str(err)
    else:
        raise AssertionError("an active deployment was resumed")
