"""Several deployment servers: each runs a worker on its own host queue, projects are pinned
to a server, and a dead server stalls only its own deployments, which resume when it returns."""

import asyncio
import uuid
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.diagnosis import Kind, diagnose
from slipway.settings import Settings
from slipway.workflow_ids import monitor_schedule_id, reconcile_schedule_id
from tests.components import web_ports, web_servers
from tests.helpers import deploy, fetch, make_site, outcome
from tests.running import worker_process


async def test_two_servers_serve_their_own_projects_and_stall_alone(
    client: Client, base_settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    queue = f"t-{uuid.uuid4().hex[:12]}"

    def server(name: str) -> Settings:
        return base_settings.model_copy(
            update={
                "home": tmp_path / name,
                "server": f"{name}{uuid.uuid4().hex[:6]}",
                "task_queue": queue,
                **web_ports(),
                "upload_store": tmp_path / "uploads",
            }
        )

    alpha, beta = server("alpha"), server("beta")
    web = web_servers(alpha) + web_servers(beta)
    workers = {"alpha": worker_process(alpha, "alpha"), "beta": worker_process(beta, "beta")}
    on_alpha, on_beta = f"{project}-a", f"{project}-b"
    try:
        first = [
            await deploy(client, alpha, make_site(tmp_path / "a1", "alpha one"), on_alpha),
            await deploy(client, beta, make_site(tmp_path / "b1", "beta one"), on_beta),
        ]
        assert [await outcome(client, d) for d in first] == [None, None]
        assert "alpha one" in fetch(alpha, on_alpha).text
        assert "beta one" in fetch(beta, on_beta).text
        assert fetch(alpha, on_beta).status_code == 404, "each server routes its own projects"
        assert queries.project_server(engine, on_beta) == beta.server

        workers["beta"].kill()
        # Deployed from alpha's side, the project still goes to the server it is pinned to.
        stalled = await deploy(client, alpha, make_site(tmp_path / "b2", "beta two"), on_beta)
        moving = await deploy(client, alpha, make_site(tmp_path / "a2", "alpha two"), on_alpha)
        assert await outcome(client, moving) is None
        assert "alpha two" in fetch(alpha, on_alpha).text
        kind = None
        for _ in range(100):
            view = queries.get_deployment(engine, stalled)
            if view is not None:
                kind = (await diagnose(client, view)).kind
                if kind is Kind.NO_WORKER:
                    break
            await asyncio.sleep(0.1)
        assert kind is Kind.NO_WORKER
        assert "beta one" in fetch(beta, on_beta).text

        workers["beta"] = worker_process(beta, "beta-again")
        assert await outcome(client, stalled) is None
        assert "beta two" in fetch(beta, on_beta).text
    finally:
        for worker in workers.values():
            worker.stop()
        for service in web:
            service.stop()
        for settings in (alpha, beta):
            for schedule in (reconcile_schedule_id, monitor_schedule_id):
                await client.get_schedule_handle(schedule(settings.server)).delete()
