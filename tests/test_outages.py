"""PostgreSQL and the Temporal server, each stopped and restarted mid-deployment: the
deployment completes, with one transition row per phase."""

import asyncio
import uuid
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from slipway import queries
from slipway.database import engine_for, migrate
from slipway.phases import Phase
from slipway.search_attributes import ALL as SEARCH_ATTRIBUTES
from slipway.settings import Settings
from slipway.stack.binaries import binary
from tests.components import embedded_postgres, free_port
from tests.helpers import SUCCESS_TRANSITIONS, deploy, fetch, make_site, outcome, transitions
from tests.running import RunningWorker


def _phase(engine: sa.Engine, deployment_id: str) -> Phase | None:
    try:
        view = queries.get_deployment(engine, deployment_id)
    except sa.exc.OperationalError:
        return None
    return view.phase if view else None


async def _until_copying(engine: sa.Engine, deployment_id: str) -> None:
    for _ in range(2400):
        if _phase(engine, deployment_id) is Phase.COPYING_FILES:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("copying_files never began")


async def test_postgres_restarted_mid_deployment(
    client: Client, settings: Settings, project: str, tmp_path: Path, outside_tmp: Path
) -> None:
    database, url = embedded_postgres(outside_tmp)
    own = settings.model_copy(update={"database_url": url})
    migrate(own.sqlalchemy_url)
    engine = engine_for(own.sqlalchemy_url)
    try:
        async with RunningWorker(client, own):
            deployment_id = await deploy(
                client, own, make_site(tmp_path / "site", "outlived", 20000), project
            )
            await _until_copying(engine, deployment_id)
            database.stop()
            await asyncio.sleep(3)
            database.start()
            database.wait_ready()
            assert await outcome(client, deployment_id, timeout=300) is None
        assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
        assert "outlived" in fetch(own, project).text
    finally:
        engine.dispose()
        database.stop()


async def test_temporal_restarted_mid_deployment(
    settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    port = free_port()

    async def start_temporal() -> WorkflowEnvironment:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            search_attributes=SEARCH_ATTRIBUTES,
            data_converter=pydantic_data_converter,
            dev_server_database_filename=str(tmp_path / "temporal.db"),
            dev_server_extra_args=["--ui-disable-news-fetch", "--headless"],
            port=port,
        )

    env = await start_temporal()
    own = settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{port}", "task_queue": f"t-{uuid.uuid4().hex[:8]}"}
    )
    client = await Client.connect(own.temporal_address, data_converter=pydantic_data_converter)
    try:
        async with RunningWorker(client, own):
            deployment_id = await deploy(
                client, own, make_site(tmp_path / "site", "outlived", 20000), project
            )
            await _until_copying(engine, deployment_id)
            await env.shutdown()
            await asyncio.sleep(2)
            env = await start_temporal()
            assert await outcome(client, deployment_id, timeout=300) is None
        assert transitions(engine, deployment_id) == SUCCESS_TRANSITIONS
        assert "outlived" in fetch(own, project).text
    finally:
        await env.shutdown()
