"""The `slipway` command line, run as a person runs it, against the session's components."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from slipway.settings import Settings
from tests.components import free_port
from tests.helpers import ANCIENT_DAYS, ancient_stuck, deploy, deploy_and_wait, make_site
from tests.running import RunningWorker

SLIPWAY = str(Path(sys.executable).parent / "slipway")


async def slipway(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the CLI without blocking the event loop the in-process worker runs on; its
    output is a pipe, not a terminal (as in CI)."""
    process = await asyncio.create_subprocess_exec(
        SLIPWAY,
        *args,
        env={**os.environ, **settings.environment(), "COLUMNS": "200", **(env or {})},
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
    # Not a terminal: a line each time the deployment enters a phase, not a redrawn bar.
    lines = out.splitlines()
    assert lines[1:9] == [
        "queued (0%)",
        "pulling_source (10%)",
        "building (30%)",
        "copying_files (50%)",
        "creating_symlinks (70%)",
        "updating_routes (80%)",
        "health_check (90%)",
        "active (100%)",
    ], out
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
    assert f"http://{project}.localhost:{settings.http_port}/" in out
    assert "contentDigest" not in out  # the internals are for -v
    code, out, _ = await slipway(settings, "status", deployment_id, "-v")
    assert code == 0 and "contentDigest" in out
    code, out, _ = await slipway(settings, "ls", "--project", project)
    assert code == 0 and deployment_id[:8] in out and " UTC" in out


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
    failed = out.split()[0]

    # The log ends with the reason; the row keeps the phase and progress it reached.
    code, out, err = await slipway(settings, "logs", failed)
    assert code == 0, err
    last = out.splitlines()[-1]
    assert "Failed in building:" in last and "no index.html" in last
    code, out, err = await slipway(settings, "status", failed, "--json")
    document = json.loads(out)
    assert (document["status"], document["phase"]) == ("failed", "failed")
    assert document["progress"] >= 30 and document["metadata"]["failedPhase"] == "building"
    assert "stack" not in document["metadata"]
    code, out, err = await slipway(settings, "status", failed)
    assert code == 0 and "building (" in out and "no index.html" in out
    assert "activities/" not in out
    code, out, err = await slipway(settings, "status", failed, "-v", "--json")
    assert "activities/phases/building.py" in json.loads(out)["metadata"]["stack"]


async def test_bad_input_gets_a_message_not_a_traceback(settings: Settings, tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", "x")
    for args, expected in (
        (("deploy", str(site), "--project", "Bad_Name"), "invalid project name"),
        (("deploy", str(tmp_path / "missing"), "--project", "ok"), "neither a directory"),
        (("status", "not-a-uuid"), "invalid deployment id"),
        (("stuck", "--older-than", "soon"), "invalid duration"),
        (
            ("deploy", str(site), "--project", "ok", "--env-file", str(tmp_path / "no")),
            "--env-file",
        ),
        (("logs", str(uuid.uuid4())), "no deployment"),
        (("heal", "never-deployed"), "no project 'never-deployed'"),
        (("pin", "ok", "Bad_Server"), "invalid server name"),
        (("pin", "ok", "nobody-serves-this"), "no worker serves server 'nobody-serves-this'"),
        (("rollback", "ok", "--to", str(uuid.uuid4())), "not a deployment of ok"),
    ):
        code, out, err = await slipway(settings, *args)
        assert code == 2, (args, out, err)
        assert expected in err
        assert len(err.splitlines()) == 1, err
    code, _, err = await slipway(settings, "status", str(uuid.uuid4()))
    assert code == 2 and "no deployment" in err


async def test_version_and_empty_results(settings: Settings, project: str) -> None:
    code, out, _ = await slipway(settings, "--version")
    assert code == 0 and out.startswith("slipway ")
    code, out, _ = await slipway(settings, "ls", "--project", project)
    assert code == 0 and out.strip() == "no deployments"
    code, out, _ = await slipway(settings, "stuck", "--older-than", "1000d")
    assert code == 0 and out.strip() == "no stuck deployments"
    code, out, _ = await slipway(settings, "alerts", project)
    assert code == 0 and out.strip() == "no alerts"


async def test_every_command_says_in_one_line_what_does_not_answer(
    settings: Settings, tmp_path: Path
) -> None:
    """Exit status 3 and one line naming the component and what to do, for each command,
    with PostgreSQL, then Temporal, then the API not answering."""
    site = make_site(tmp_path / "site", "x")
    some = str(uuid.uuid4())
    database_down = settings.model_copy(
        update={
            "database_url": f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/slipway",
            "temporal_address": f"127.0.0.1:{free_port()}",
        }
    )
    temporal_down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    api_down = {"SLIPWAY_API_URL": f"http://127.0.0.1:{free_port()}", "SLIPWAY_API_TOKEN": "t"}
    commands: list[tuple[Settings, dict[str, str], tuple[str, ...], str]] = [
        *(
            (database_down, {}, args, "cannot reach PostgreSQL at 127.0.0.1:")
            for args in (
                ("status", some),
                ("logs", some),
                ("ls",),
                ("stuck",),
                ("projects",),
                ("alerts",),
                ("heal", "some"),
                ("stats",),
                ("resume", some),
                ("db", "migrate"),
                ("project", "show", "some"),
                ("domains", "ls"),
            )
        ),
        *(
            (temporal_down, {}, args, "cannot reach Temporal at 127.0.0.1:")
            for args in (
                ("deploy", str(site), "--project", "some"),
                ("cancel", some),
                ("rollback", "some"),
                ("reconcile",),
                ("pin", "some", "local"),
            )
        ),
        *(
            (settings, api_down, args, "cannot reach the API at http://127.0.0.1:")
            for args in (
                ("deploy", str(site), "--project", "some"),
                ("status", some),
                ("logs", some),
                ("ls",),
                ("cancel", some),
                ("projects",),
            )
        ),
    ]
    for where, env, args, expected in commands:
        code, out, err = await slipway(where, *args, env=env)
        assert code == 3, (args, out, err[-3000:])
        assert err.startswith(f"error: {expected}"), (args, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in out + err, (args, err)


async def test_resume_waits_for_the_resumed_run(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    broken = settings.model_copy(
        update={"server": "broken", "static_port": free_port(), "health_timeout_seconds": 1.0}
    )
    async with RunningWorker(client, broken, host_only=True):
        failed, failure = await deploy_and_wait(
            client, broken, make_site(tmp_path / "s", "resumed"), project
        )
    assert failure is not None
    fixed = settings.model_copy(update={"server": "broken"})
    async with RunningWorker(client, fixed, host_only=True):
        code, out, err = await slipway(settings, "resume", failed[:8])
    assert code == 0, (out, err)
    assert "active (100%)" in out and "✓ active" in out and "failed" not in out + err


async def test_stuck_and_migrate(settings: Settings, engine: sa.Engine) -> None:
    code, out, err = await slipway(settings, "db", "migrate")
    assert code == 0, err
    code, out, err = await slipway(settings, "stuck", "--older-than", "5m", "--json")
    assert code == 0, err
    assert isinstance(json.loads(out), list)

    # A page at a time, the longest stuck first; stderr says how to ask for the next.
    older = f"{ANCIENT_DAYS}d"
    with ancient_stuck(engine, ["queued", "deploying", "building"]) as ids:
        code, out, err = await slipway(settings, "stuck", "--older-than", older, "--limit", "2")
        assert code == 0, err
        assert ids[0] in out and ids[1] in out and ids[2] not in out
        following = f"more: slipway stuck --older-than {older} --limit 2 --after "
        assert err.startswith(following), err
        after = err.removeprefix(following).strip()
        code, out, err = await slipway(
            settings, "stuck", "--older-than", older, "--limit", "2", "--after", after, "--json"
        )
        assert code == 0 and err == "", err
        assert [found["id"] for found in json.loads(out)] == ids[2:]

    code, _, err = await slipway(settings, "stuck", "--limit", "501")
    assert code == 2 and "SLIPWAY_STUCK_MAX_LIMIT" in err, err
    code, _, err = await slipway(settings, "stuck", "--after", "soon")
    assert code == 2 and "after: 'soon' is not a cursor" in err, err


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
    assert code == 1 and "nothing to cancel" in err
    code, out, err = await slipway(settings, "resume", ids[1])
    assert code == 1 and "nothing to resume" in err

    code, out, err = await slipway(settings, "reconcile", "--json")
    assert code == 0, err
    assert set(json.loads(out)) == {"orphans", "cleanup", "expired_previews"}
    code, out, err = await slipway(settings, "reconcile")
    assert code == 0, err
    assert out.startswith("orphans: ") and "cleanup: " in out


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
