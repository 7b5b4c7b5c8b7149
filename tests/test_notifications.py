"""Every deployment's end reaches the webhook once, on the session's real components, with
what a person needs (and a Slack-compatible `text`) and never a secret; with no webhook set,
no notification starts."""

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id, notify_workflow_id
from tests.helpers import deploy_and_wait, make_site
from tests.receiver import Receiver
from tests.running import RunningWorker


async def _bodies(receiver: Receiver, count: int) -> list[dict[str, object]]:
    for _ in range(200):
        if len(receiver.bodies) >= count:
            break
        await asyncio.sleep(0.05)
    return receiver.bodies


async def test_active_and_failed_deployments_are_announced_once_each(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    receiver: Receiver,
    project: str,
    tmp_path: Path,
) -> None:
    notifying = settings.model_copy(update={"notify_url": receiver.url})
    secret = "do-not-tell-anyone"
    unsupported = tmp_path / "bad"
    unsupported.mkdir()
    (unsupported / "notes.txt").write_text("no index.html, no Dockerfile")
    async with RunningWorker(client, notifying):
        good, failure = await deploy_and_wait(
            client, notifying, make_site(tmp_path / "ok", "ok"), project, env={"KEY": secret}
        )
        assert failure is None
        bad, failure = await deploy_and_wait(client, notifying, unsupported, project)
        assert failure is not None
        # The notices go out after the deployments end, from this worker.
        bodies = await _bodies(receiver, 2)
    await asyncio.sleep(0.5)
    assert len(bodies) == 2, bodies
    by_id = {str(b["id"]): b for b in bodies}
    ok, ko = by_id[good], by_id[bad]
    assert (ok["project"], ok["status"], ok["phase"]) == (project, "active", "active")
    assert str(ok["url"]).startswith(f"http://{project}.")
    assert str(ok["temporalUrl"]).endswith(f"deploy-{good}")
    assert "is live" in str(ok["text"])
    assert (ko["status"], ko["phase"]) == ("failed", "building")
    assert "unsupported upload" in str(ko["error"]) and "failed in building" in str(ko["text"])
    assert secret not in str(bodies)


async def test_an_end_with_no_webhook_set_starts_no_notification(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    assert settings.notify_url is None
    deployment_id, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "ok", "ok"), project
    )
    assert failure is None
    handle = client.get_workflow_handle(deployment_workflow_id(deployment_id))
    history = await handle.fetch_history()
    children = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    assert children == []
    with pytest.raises(RPCError) as err:
        await client.get_workflow_handle(notify_workflow_id(deployment_id, 0)).describe()
    assert err.value.status is RPCStatusCode.NOT_FOUND
