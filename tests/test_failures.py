"""Failed deployments: the reason and stack are recorded, and the previous release serves."""

from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.layout import Layout
from slipway.phases import PROGRESS, Phase, Status
from slipway.settings import Settings
from tests.components import free_port
from tests.helpers import (
    broken_static,
    deploy_and_wait,
    fetch,
    make_site,
    row,
    transitions,
    wait_for,
)
from tests.running import RunningWorker


async def test_unsupported_upload_fails_once_and_keeps_serving(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    good, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "good", "still here"), project
    )
    assert failure is None
    empty = tmp_path / "nothing"
    (empty / "src").mkdir(parents=True)
    (empty / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    bad, failure = await deploy_and_wait(client, settings, empty, project)
    assert failure is not None and "no index.html" in failure

    view = row(engine, bad)
    # It keeps the progress it reached, and its log ends with the reason.
    assert (view.status, view.phase) == (Status.FAILED, Phase.FAILED)
    assert PROGRESS[Phase.BUILDING] <= view.progress < PROGRESS[Phase.COPYING_FILES]
    assert "no index.html" in str(view.metadata["error"])
    assert "activities/phases/building.py" in str(view.metadata["stack"])
    assert view.metadata["failedPhase"] == "building"
    assert view.metadata["attempt"] == 1
    assert "failedAt" in view.metadata
    assert transitions(engine, bad)[-1] == f"Phase transition: failed ({view.progress}%)"
    last = queries.get_logs(engine, bad)[-1]
    assert last.level == "error" and last.message.startswith("Failed in building: ")
    assert "no index.html" in last.message
    assert Layout(settings.home).current(project).readlink().name == good
    assert "still here" in fetch(settings, project).text


async def test_failed_health_check_switches_back(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    good, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "good", "old release"), project
    )
    assert failure is None
    broken = broken_static(settings, 1.0)
    async with RunningWorker(client, broken):
        bad, failure = await deploy_and_wait(
            client, broken, make_site(tmp_path / "bad", "new release"), project
        )
    assert failure is not None and "was not served" in failure
    view = row(engine, bad)
    assert view.status is Status.FAILED
    assert view.metadata["failedPhase"] == "health_check"
    assert "was not served" in str(view.metadata["error"])
    assert view.metadata["stack"]
    layout = Layout(settings.home)
    assert layout.current(project).readlink().name == good
    assert str(settings.static_port) in layout.route(project).read_text()
    # Traefik reloads the restored route within its watcher's debounce.
    await wait_for("the old release to serve again", lambda: fetch(settings, project).is_success)
    assert "old release" in fetch(settings, project).text


async def test_first_deployment_failing_leaves_nothing_served(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
) -> None:
    broken = settings.model_copy(update={"static_port": free_port(), "health_timeout_seconds": 1.0})
    async with RunningWorker(client, broken):
        bad, failure = await deploy_and_wait(
            client, broken, make_site(tmp_path / "bad", "never"), project
        )
    assert failure is not None
    layout = Layout(settings.home)
    assert not layout.current(project).exists()
    assert not layout.route(project).exists()
    assert row(engine, bad).status is Status.FAILED
