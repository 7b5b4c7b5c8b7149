"""The `slipway` command line, run as a person runs it, against the session's components."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from temporalio.client import Client

from slipway.settings import Settings
from tests.helpers import deploy, make_site
from tests.running import RunningWorker

SLIPWAY = str(Path(sys.executable).parent / "slipway")


async def slipway(settings: Settings, *args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the event loop the in-process worker runs on."""
    process = await asyncio.create_subprocess_exec(
        SLIPWAY,
        *args,
        env={**os.environ, **settings.environment(), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_deploy_wait_status_and_logs(
    settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "site", "from the cli")
    code, out, err = await slipway(settings, "deploy", str(site), "--project", project, "--wait")
    assert code == 0, err
    deployment_id = out.split()[0]
    uuid.UUID(deployment_id)
    assert "active" in out
    assert f"http://{project}.localhost:{settings.http_port}/" in out

    code, out, err = await slipway(settings, "status", deployment_id, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == {
        "id",
        "project",
        "status",
        "phase",
        "progress",
        "metadata",
        "updated_at",
    }
    assert (document["status"], document["phase"], document["progress"]) == (
        "active",
        "active",
        100,
    )
    assert document["project"] == project

    code, out, err = await slipway(settings, "logs", deployment_id, "--json")
    assert code == 0, err
    assert [e["phase"] for e in json.loads(out)][-1] == "active"

    code, out, _ = await slipway(settings, "logs", deployment_id)
    assert code == 0 and "Phase transition: health_check (90%)" in out
    code, out, _ = await slipway(settings, "status", deployment_id)
    assert code == 0 and "active" in out


async def test_failed_deploy_exits_1_with_the_error(
    settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("no site here")
    code, out, err = await slipway(settings, "deploy", str(empty), "--project", project, "--wait")
    assert code == 1
    assert "no index.html" in err
    assert "Traceback" not in out + err


async def test_bad_input_gets_a_message_not_a_traceback(settings: Settings, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "x")
    for args, expected in (
        (("deploy", str(site), "--project", "Bad_Name"), "invalid project name"),
        (("deploy", str(tmp_path / "missing"), "--project", "ok"), "neither a directory"),
        (("status", "not-a-uuid"), "invalid deployment id"),
        (("stuck", "--older-than", "soon"), "invalid duration"),
    ):
        code, out, err = await slipway(settings, *args)
        assert code == 2, (args, out, err)
        assert expected in err
        assert "Traceback" not in out + err
    code, _, err = await slipway(settings, "status", str(uuid.uuid4()))
    assert code == 1 and "no deployment" in err


async def test_stuck_and_migrate(settings: Settings) -> None:
    code, out, err = await slipway(settings, "db", "migrate")
    assert code == 0, err
    code, out, err = await slipway(settings, "stuck", "--older-than", "5m", "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), list)


async def test_rollback_reconcile_cancel_and_resume_commands(
    settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    ids = []
    for text in ("first", "second"):
        site = make_site(tmp_path / text, text)
        code, out, err = await slipway(
            settings, "deploy", str(site), "--project", project, "--wait"
        )
        assert code == 0, err
        ids.append(out.split()[0])

    code, out, err = await slipway(settings, "rollback", project)
    assert code == 0, err
    assert "active" in out
    code, out, err = await slipway(settings, "status", out.split()[0], "--json")
    assert json.loads(out)["metadata"]["release"] == ids[0]

    code, out, err = await slipway(settings, "rollback", project, "--to", "not-an-id")
    assert code == 2 and "invalid deployment id" in err

    code, out, err = await slipway(settings, "cancel", ids[1])
    assert code == 2 and "nothing to cancel" in err
    code, out, err = await slipway(settings, "resume", ids[1])
    assert code == 2 and "nothing to resume" in err

    code, out, err = await slipway(settings, "reconcile")
    assert code == 0, err
    assert set(json.loads(out)) == {"orphans", "cleanup", "expired_previews"}


async def test_logs_follow_streams_until_the_deployment_ends(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    deployment_id = await deploy(client, settings, make_site(tmp_path / "s", "followed"), project)
    code, out, err = await asyncio.wait_for(
        slipway(settings, "logs", deployment_id, "--follow"), timeout=120
    )
    assert code == 0, err
    lines = [line for line in out.splitlines() if "Phase transition" in line]
    assert "active (100%)" in lines[-1]
    assert len(lines) == 8
