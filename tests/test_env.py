"""A project's environment variables: versions made by set, unset and import (the CLI, the
API and the remote CLI), used by the next deployment, a redeploy and a rollback on the real
Docker Engine, a one-off `--env` that is not kept, and values that never appear in clear in
the database, Temporal's history or the logs."""

import asyncio
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.environment import EnvError, check, mask, pairs, parse_dotenv
from slipway.limits import EnvLimits
from slipway.models import DeploymentInput, DeploymentView
from slipway.phases import Mode, Phase, Status
from slipway.settings import Settings
from slipway.stack.binaries import binary
from slipway.submission import continuation
from starter import api, applogs, project_env
from tests.apps import write_busybox_app
from tests.helpers import deploy_and_wait, fetch, outcome, row, workflows_of
from tests.running import RunningWorker
from tests.test_cli import slipway
from tests.test_container_deployments import FAST, _payload_data
from tests.test_http_api import AUTH, api_settings, http, http_app  # noqa: F401
from tests.test_remote_cli import Remote, remote  # noqa: F401

PRINTS_ENV = 'sh -c "env | tee /www/env.txt; exec /bin/httpd -f -p 127.0.0.1:$PORT -h /www"'
"""The app's command: its environment printed to its output and served at /env.txt."""


def _app(root: Path, version: str) -> Path:
    return write_busybox_app(
        root, version=version, config=FAST.format(path="/"), command=PRINTS_ENV
    )


def _served_env(settings: Settings, project: str) -> dict[str, str]:
    """The environment the serving container started with, as it printed it."""
    text = fetch(settings, project, "/env.txt").text
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_dotenv_files_are_read_as_people_write_them() -> None:
    text = (
        "# settings\n"
        "\n"
        "PLAIN=value with spaces   # a comment\n"
        "export EXPORTED=yes\n"
        "SINGLE='kept $as #written'\n"
        'DOUBLE="line\\nbreak \\"quoted\\""  # after\n'
        "EMPTY=\n"
        "EQUALS=a=b=c\n"
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value with spaces",
        "EXPORTED": "yes",
        "SINGLE": "kept $as #written",
        "DOUBLE": 'line\nbreak "quoted"',
        "EMPTY": "",
        "EQUALS": "a=b=c",
    }
    for bad, why in (
        ("A=1\n\nno equals sign\n", "line 3: expected NAME=VALUE"),
        ("A=1\n1BAD=x\n", "line 2: invalid variable name '1BAD'"),
        ("A='open\n", "line 1: a single quote is not closed"),
        ('A="x" trailing\n', "line 1: unexpected 'trailing'"),
        ("PORT=1\n", "line 1: PORT is set by Slipway"),
    ):
        with pytest.raises(EnvError, match=why):
            parse_dotenv(bad)


def test_names_limits_and_masks() -> None:
    assert pairs(["A=1", "B_2=x=y", "C="]) == {"A": "1", "B_2": "x=y", "C": ""}
    for bad in ("NOVALUE", "has-dash=1", "=1", "HOST=x"):
        with pytest.raises(EnvError):
            pairs([bad])
    limits = EnvLimits(max_vars=2, max_value_bytes=4, max_total_bytes=8)
    check({"A": "1234", "B": "12"}, limits)
    with pytest.raises(EnvError, match="SLIPWAY_ENV_MAX_VARS"):
        check({"A": "", "B": "", "C": ""}, limits)
    with pytest.raises(EnvError, match=r"A's value is longer .*SLIPWAY_ENV_MAX_VALUE_BYTES"):
        check({"A": "12345"}, limits)
    with pytest.raises(EnvError, match="SLIPWAY_ENV_MAX_TOTAL_BYTES"):
        check({"A": "1234", "B": "1234"}, limits)
    assert mask("short") == "****"
    assert mask("postgres://user:pw@db/app") == "po****"


async def test_versions_through_the_api(
    http: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
    engine: sa.Engine,
    project: str,
) -> None:
    secret = "sk-" + os.urandom(12).hex()
    answer = await http.get(f"/api/projects/{project}/env")
    assert answer.status_code == 200
    assert answer.json() == {"project": project, "version": 0, "variables": []}

    answer = await http.patch(
        f"/api/projects/{project}/env", json={"set": {"API_KEY": secret, "MODE": "dev"}}
    )
    assert answer.status_code == 200, answer.text
    made = answer.json()
    assert made["version"]["version"] == 1
    assert made["version"]["names"] == ["API_KEY", "MODE"]
    assert made["deploymentId"] is None and made["redeployError"] is None
    assert secret not in answer.text

    dotenv = "# from a file\nexport MODE=production\nDATABASE_URL='postgres://db/app'\n"
    answer = await http.post(f"/api/projects/{project}/env/import", json={"dotenv": dotenv})
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"]["set"] == ["DATABASE_URL", "MODE"]

    answer = await http.patch(f"/api/projects/{project}/env", json={"unset": ["DATABASE_URL"]})
    assert answer.status_code == 200, answer.text
    listing = (await http.get(f"/api/projects/{project}/env")).json()
    assert listing["version"] == 3
    assert listing["variables"] == [
        {"name": "API_KEY", "value": secret[:2] + "****"},
        {"name": "MODE", "value": "****"},
    ]

    refusals = (
        ("PATCH", "", {"unset": ["NOT_SET"]}, "has no variable NOT_SET"),
        ("PATCH", "", {"set": {"PORT": "80"}}, "PORT is set by Slipway"),
        ("PATCH", "", {"set": {"1X": "80"}}, ""),
        ("POST", "/import", {"dotenv": "A=1\nB C\n"}, "line 2: expected NAME=VALUE"),
    )
    for method, tail, body, why in refusals:
        answer = await http.request(method, f"/api/projects/{project}/env{tail}", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert why in answer.json()["detail"]
    assert (await http.get(f"/api/projects/{project}/env")).json()["version"] == 3
    answer = await http.post(f"/api/projects/{project}/deployments", json={"env": {"PORT": "1"}})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("env: PORT is")

    # Nothing deployed and no repository: the version is kept, the redeploy says why not.
    answer = await http.patch(
        f"/api/projects/{project}/env", json={"set": {"MODE": "x"}, "redeploy": True}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["deploymentId"] is None
    assert "has nothing deployed" in answer.json()["redeployError"]

    answer = await http.get(f"/api/projects/{project}/env", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 401

    with engine.connect() as conn:
        for table in ("env_versions", "project_events", "projects"):
            dump = conn.execute(sa.text(f"SELECT string_agg(t::text, ' ') FROM {table} t"))
            text = str(dump.scalar())
            assert secret not in text and "postgres://db/app" not in text
        events = conn.execute(
            sa.text(
                "SELECT message FROM project_events e JOIN projects p ON p.id = e.project_id "
                "WHERE p.name = :name AND kind = 'env' ORDER BY e.id"
            ),
            {"name": project},
        ).scalars()
        assert next(iter(events)) == "environment version 1: set API_KEY, MODE"


def test_limits_have_settings(settings: Settings, engine: sa.Engine, project: str) -> None:
    small = settings.model_copy(update={"env_max_vars": 2})
    project_env.change(engine, small, project, {"A": "1", "B": "2"})
    with pytest.raises(EnvError, match=r"3 variables is more than 2 \(SLIPWAY_ENV_MAX_VARS\)"):
        project_env.change(engine, small, project, {"C": "3"})
    assert project_env.listing(engine, small, project).version == 1


async def test_env_commands_on_the_server(
    settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    code, out, err = await slipway(
        settings, "env", "set", project, "GREETING=hello world", "TOKEN=abcdefghijklmnop"
    )
    assert code == 0, err
    assert f"{project}: env version 1 (set GREETING, TOKEN)" in out
    dotenv = tmp_path / ".env"
    dotenv.write_text("export LEVEL=debug\n# nothing else\nbad line\n")
    code, out, err = await slipway(settings, "env", "import", project, str(dotenv))
    assert code == 2 and "line 3: expected NAME=VALUE" in err
    dotenv.write_text("export LEVEL=debug\n")
    code, out, err = await slipway(settings, "env", "import", project, str(dotenv))
    assert code == 0 and "env version 2 (set LEVEL)" in out, err
    code, out, err = await slipway(settings, "env", "unset", project, "GREETING")
    assert code == 0 and "env version 3 (unset GREETING)" in out, err
    code, out, err = await slipway(settings, "env", "ls", project, "--json")
    assert code == 0, err
    assert json.loads(out)["variables"] == [
        {"name": "LEVEL", "value": "****"},
        {"name": "TOKEN", "value": "ab****"},
    ]
    code, out, err = await slipway(settings, "env", "set", project, "bad-name=1")
    assert code == 2 and "invalid variable name 'bad-name'" in err


async def test_env_commands_from_another_machine(
    remote: Remote,  # noqa: F811
    project: str,
    tmp_path: Path,
) -> None:
    code, out, err = await remote.slipway("env", "set", project, "A=1", "LONG=0123456789abc")
    assert code == 0 and "env version 1" in out, err
    dotenv = remote.machine / ".env"
    dotenv.write_text('B="two"\n')
    code, out, err = await remote.slipway("env", "import", project, str(dotenv))
    dotenv.unlink()
    assert code == 0 and "env version 2 (set B)" in out, err
    code, out, err = await remote.slipway("env", "unset", project, "NOPE")
    assert code == 2 and "has no variable NOPE" in err
    code, out, err = await remote.slipway("env", "set", project, "C=3", "--redeploy")
    assert code == 1 and "env version 3" in out and "not redeployed" in err
    code, out, err = await remote.slipway("env", "ls", project)
    assert code == 0, err
    assert "version 3" in out and "LONG" in out and "01****" in out and "0123456789abc" not in out


async def test_versions_across_deploy_redeploy_override_and_rollback(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
    containers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    first_secret = "first-" + os.urandom(8).hex()
    second_secret = "second-" + os.urandom(8).hex()
    one_off = "oneoff-" + os.urandom(8).hex()

    project_env.change(engine, settings, project, {"SECRET": first_secret, "MODE": "one"})
    v1, failure = await deploy_and_wait(client, settings, _app(tmp_path / "a", "a"), project)
    assert failure is None
    assert row(engine, v1).metadata["envVersion"] == 1
    seen = _served_env(settings, project)
    assert (seen["SECRET"], seen["MODE"]) == (first_secret, "one")

    # A change alone redeploys nothing: the container keeps what it started with.
    made = project_env.change(engine, settings, project, {"SECRET": second_secret}, ["MODE"])
    assert made.version == 2
    assert len(queries.project_history(engine, project)) == 1
    assert _served_env(settings, project)["SECRET"] == first_secret

    # --redeploy: the serving release again, without rebuilding, with the new version.
    async def temporal() -> Client:
        return client

    change = await project_env.applied(temporal, settings, engine, made, redeploy=True)
    assert change.deployment_id is not None and change.redeploy_error is None
    assert await outcome(client, change.deployment_id) is None
    redeployed = row(engine, change.deployment_id)
    assert redeployed.metadata["envVersion"] == 2 and redeployed.release == v1
    seen = _served_env(settings, project)
    assert seen["SECRET"] == second_secret and "MODE" not in seen

    # A new build runs with the current version; --env overrides it for that deployment only.
    v2, failure = await deploy_and_wait(
        client, settings, _app(tmp_path / "b", "b"), project, env={"SECRET": one_off, "X": "1"}
    )
    assert failure is None
    assert row(engine, v2).metadata["envVersion"] == 2
    seen = _served_env(settings, project)
    assert (seen["SECRET"], seen["X"]) == (one_off, "1")
    assert project_env.listing(engine, settings, project).version == 2
    assert [v.name for v in project_env.listing(engine, settings, project).variables] == ["SECRET"]
    lines = "\n".join(applogs.app_logs(settings, engine, project))
    assert "SECRET=***" in lines and one_off not in lines

    # A plain redeploy (a new deployment of new source) is back on the project's version.
    v3, failure = await deploy_and_wait(client, settings, _app(tmp_path / "c", "c"), project)
    assert failure is None
    seen = _served_env(settings, project)
    assert seen["SECRET"] == second_secret and "X" not in seen

    # A rollback to the first release runs with the version it ran with, not the current.
    back = await api.rollback(client, settings, engine, project, to=v1)
    assert await outcome(client, back) is None
    assert row(engine, back).metadata["envVersion"] == 1
    seen = _served_env(settings, project)
    assert (seen["SECRET"], seen["MODE"]) == (first_secret, "one")
    assert project_env.listing(engine, settings, project).version == 2

    secrets = (first_secret, second_secret, one_off)
    with engine.connect() as conn:
        for table in ("projects", "deployments", "deployment_logs", "env_versions"):
            dump = str(
                conn.execute(sa.text(f"SELECT string_agg(t::text, ' ') FROM {table} t")).scalar()
            )
            assert not any(s in dump for s in secrets), table
    deployments = (v1, change.deployment_id, v2, v3, back)
    for workflow_id in await workflows_of(client, project, deployments):
        history = await _history(settings, workflow_id)
        assert not any(s.encode() in history for s in secrets), workflow_id
        assert b"SECRET" not in history, "not even the names travel through Temporal"
    assert not any(s in caplog.text for s in secrets)


async def _history(settings: Settings, workflow_id: str) -> bytes:
    """A workflow's history, its payloads decoded, as `temporal workflow show` gives it."""
    shown = await asyncio.create_subprocess_exec(
        binary("temporal"),
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--address",
        settings.temporal_address,
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await shown.communicate()
    assert shown.returncode == 0, out.decode()
    return out + b" ".join(_payload_data(json.loads(out)))


def test_a_resumed_or_abandoned_run_keeps_its_version() -> None:
    now = datetime.now(UTC)
    view = DeploymentView(
        id=str(uuid.uuid4()),
        project="p-resumed",
        status=Status.FAILED,
        phase=Phase.FAILED,
        progress=0,
        metadata={"envVersion": 4, "mode": "deploy", "round": 1},
        updated_at=now,
        phase_updated_at=now,
        created_at=now,
        workflow_id="deploy-x",
        source="upload site",
    )
    template = DeploymentInput(project="p-resumed", env_version=9)
    for mode in (Mode.DEPLOY, Mode.ABANDON):
        again = continuation(view, template, mode, "why", next_round=True)
        assert (again.env_version, again.env) == (4, {})
