"""No database call runs on an event loop's thread. One there stalls everything else the loop
serves (the API's other requests and event streams, an in-process worker's heartbeats) for a
round trip, or for as long as PostgreSQL hangs.

The API gets an engine of its own here, whose events note every connection checkout and
statement made on a thread that runs an event loop, and every endpoint and every function of
the Python API that reads or writes runs against it. The in-process worker keeps the shared
engine of `engine_for`: its activities are not judged here."""

import asyncio
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from slipway.models import DeploymentView
from slipway.phases import Phase, Status
from slipway.settings import Settings
from starter import api
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.helpers import make_site
from tests.running import RunningWorker
from tests.test_http_api import AUTH, TOKEN, events, pack, serving, until, until_ended, upload

ROOT = Path(__file__).resolve().parent.parent
OURS = (ROOT / "starter", ROOT / "slipway", ROOT / "tests")
"""Frames worth naming when a call is caught: the project's, not the libraries'."""

BIG_SITE_FILES = 10000
"""Enough files that a deployment is still copying when its cancel arrives."""


@dataclass
class LoopGuard:
    """What the watched engine was asked: how many calls came from threads without an event
    loop, and where each call made on a loop's thread came from."""

    elsewhere: int = 0
    on_loop: list[str] = field(default_factory=list)

    def record(self, *_: object) -> None:
        """The listener of every checkout and statement."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.elsewhere += 1
            return
        frames = [
            frame
            for frame in traceback.extract_stack()[:-1]
            if any(Path(frame.filename).is_relative_to(root) for root in OURS)
        ]
        self.on_loop.append("".join(traceback.format_list(frames[-4:])))

    def assert_clean(self) -> None:
        """The engine was used, and never from a loop's thread."""
        assert self.elsewhere > 0, "the watched engine was never used"
        assert self.on_loop == [], "database calls on the event loop:\n" + "\n".join(self.on_loop)


@pytest.fixture
def watched(base_settings: Settings) -> Iterator[tuple[sa.Engine, LoopGuard]]:
    """An engine for the API alone, under a guard on both ways a call waits: taking a
    connection (on the pool, or on PostgreSQL for a new one), and running a statement."""
    engine = sa.create_engine(base_settings.sqlalchemy_url, pool_pre_ping=True)
    guard = LoopGuard()
    sa.event.listen(engine, "checkout", guard.record)
    sa.event.listen(engine, "before_cursor_execute", guard.record)
    try:
        yield engine, guard
    finally:
        engine.dispose()


async def test_the_guard_catches_a_call_on_the_loop(
    watched: tuple[sa.Engine, LoopGuard],
) -> None:
    engine, guard = watched
    some_id = str(uuid.uuid4())
    assert await asyncio.to_thread(api.status, engine, some_id) is None
    guard.assert_clean()
    assert api.status(engine, some_id) is None
    assert guard.on_loop, "a call on the loop went unseen"
    assert "test_the_guard_catches_a_call_on_the_loop" in guard.on_loop[0]


async def test_no_endpoint_calls_the_database_on_the_event_loop(
    watched: tuple[sa.Engine, LoopGuard],
    settings: Settings,
    client: Client,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    """A real server in the loop the worker runs in, as `slipway api` serves the app."""
    engine, guard = watched
    app = create_app(settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    async with (
        serving(app) as base,
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as http,
    ):
        answer = await upload(http, pack(make_site(tmp_path / "first", "first")), project)
        assert answer.status_code == 202, answer.text
        first = answer.json()["id"]
        async with (
            http.stream("GET", f"/api/deployments/{first}/events") as stream,
            asyncio.timeout(120),
        ):
            seen = [(name, data) async for name, _, data in events(stream)]
        assert seen[-1][0] == "end" and seen[-1][1]["status"] == "active"

        async with http.stream("GET", f"/api/events?project={project}") as stream:
            name, _, data = await anext(events(stream))
        assert name == "deployment" and data["id"] == first

        for path in (
            f"/api/deployments/{first}",
            f"/api/deployments/{first}/logs",
            f"/api/deployments/{first}/timeline",
            f"/api/deployments?project={project}",
            "/api/deployments/stuck?olderThan=1s",
            "/api/analytics/phases",
        ):
            answer = await http.get(path)
            assert answer.status_code == 200, (path, answer.text)

        answer = await upload(http, pack(make_site(tmp_path / "second", "second")), project)
        assert (await until_ended(http, answer.json()["id"]))["status"] == "active"
        answer = await http.post(f"/api/projects/{project}/rollback")
        assert answer.status_code == 202, answer.text
        back = await until_ended(http, answer.json()["id"])
        assert back["status"] == "active" and back["metadata"]["release"] == first

        big = make_site(tmp_path / "big", "big", BIG_SITE_FILES)
        running = (await upload(http, pack(big), project)).json()["id"]
        await until(http, running, lambda d: d["phase"] == "copying_files")
        answer = await http.post(f"/api/deployments/{running}/cancel")
        assert answer.status_code == 202, answer.text
        assert (await until_ended(http, running))["status"] == "cancelled"
        answer = await http.post(f"/api/deployments/{running}/resume")
        while answer.status_code == 409 and "still running" in answer.json()["detail"]:
            await asyncio.sleep(0.1)
            answer = await http.post(f"/api/deployments/{running}/resume")
        assert answer.status_code == 202, answer.text
        await until(http, running, lambda d: d["status"] != "cancelled")
        assert (await until_ended(http, running, timeout=180))["status"] == "active"
    guard.assert_clean()


async def _until(
    engine: sa.Engine, deployment_id: str, done: Callable[[DeploymentView], bool]
) -> None:
    """Poll the deployment's row, in a thread as async code must, until `done(row)`."""
    async with asyncio.timeout(120):
        while True:
            view = await asyncio.to_thread(api.status, engine, deployment_id)
            if view is not None and done(view):
                return
            await asyncio.sleep(0.05)


async def _last(views: AsyncIterator[DeploymentView | None]) -> DeploymentView:
    """The deployment as `follow` last saw it, once it has ended."""
    last = None
    async for view in views:
        last = view
    assert last is not None
    return last


async def test_the_python_api_calls_the_database_off_the_event_loop(
    watched: tuple[sa.Engine, LoopGuard],
    settings: Settings,
    client: Client,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    engine, guard = watched

    async def start(name: str, files: int = 0) -> str:
        site = make_site(tmp_path / name, name, files)
        return await api.start_deployment(client, settings, site, project, engine=engine)

    first = await start("first")
    assert (await _last(api.follow(client, engine, first))).status is Status.ACTIVE
    streamed = [entry async for entry in api.follow_logs(client, engine, first)]
    assert streamed == await asyncio.to_thread(api.logs, engine, first)
    recorded = await asyncio.to_thread(api.status, engine, first)
    assert recorded is not None and recorded.status is Status.ACTIVE

    second = await start("second")
    assert (await _last(api.follow(client, engine, second))).status is Status.ACTIVE
    back = await api.rollback(client, settings, engine, project, to=first)
    assert (await _last(api.follow(client, engine, back))).release == first

    def copying(view: DeploymentView) -> bool:
        assert view.status not in api.TERMINAL, f"it ended before its cancel: {view.metadata}"
        return view.phase is Phase.COPYING_FILES

    running = await start("big", BIG_SITE_FILES)
    await _until(engine, running, copying)
    assert await api.cancel(client, engine, running) == "cancelling"
    assert (await _last(api.follow(client, engine, running))).status is Status.CANCELLED
    while True:
        try:
            assert await api.resume(client, settings, engine, running) == running
        except api.DeploymentError as err:
            assert "still running" in str(err)
            await asyncio.sleep(0.1)
        else:
            break
    # The row says cancelled until the resumed run records its first step.
    await _until(engine, running, lambda view: view.status is not Status.CANCELLED)
    assert (await _last(api.follow(client, engine, running))).status is Status.ACTIVE
    guard.assert_clean()
