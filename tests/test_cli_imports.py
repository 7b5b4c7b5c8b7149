"""What the `slipway` command loads to start: `--help` nothing of a server, and the commands a
person runs most (`status`, `logs`, `ls`) none of the API server, Docker's client, the
workflows or the activities, whether they ask this machine's database (which they read
without Temporal's client) or, from another machine, the API. Each command runs in a process
of its own, as a person runs it, against the session's components; the process then names
every module it loaded."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from slipway import records
from slipway.metadata import PhaseMetadata
from slipway.models import DeploymentInput
from slipway.phases import Phase
from slipway.settings import Settings
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.test_http_api import TOKEN, serving

PROBE = """
import json, os, sys
from starter.cli import app
code = 0
try:
    app(sys.argv[2:], prog_name="slipway")
except SystemExit as done:
    code = done.code
except Exception as err:
    code = type(err).__name__
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
sys.stdout.flush()
os._exit(0)
"""
"""Runs the CLI's app on the arguments after the first, then writes its exit status and the
modules loaded to the file the first names (and ends without finalization, as `slipway`
itself does, so a Temporal client's threads cannot abort it)."""

SERVER_SIDE = ("fastapi", "uvicorn", "starlette", "docker", "activities", "workflows")
"""Never loaded by `status`, `logs`, `ls` or `--help`, wherever the CLI runs."""

ON_THIS_MACHINE = (*SERVER_SIDE, "temporalio", "alembic")
"""Never loaded by those commands answered from this machine: they read its database alone."""

FROM_ELSEWHERE = (*SERVER_SIDE, "temporalio", "sqlalchemy", "alembic", "psycopg")
"""Never loaded by those commands answered by the API."""

FOR_HELP = (*FROM_ELSEWHERE, "httpx", "slipway.models")
"""Never loaded by `slipway --help`: it reaches no server and reads no model (pydantic itself
may be: typer checks its options' values with it)."""


async def loaded(env: dict[str, str], tmp_path: Path, *args: str) -> tuple[object, set[str]]:
    """The exit status of `slipway ARGS` and the modules it loaded."""
    report = tmp_path / f"modules-{uuid.uuid4().hex}.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROBE,
        str(report),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    found = json.loads(report.read_text())
    return found["code"], set(found["modules"])


def offending(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    """The modules that are, or are inside, one of `forbidden`."""
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


def recorded(engine: sa.Engine, project: str) -> str:
    """A deployment recorded as a worker records it, past its first phase."""
    deployment_id = str(uuid.uuid4())
    deployment = DeploymentInput(deployment_id=deployment_id, project=project)
    records.register(engine, deployment, f"{project}.localhost", PhaseMetadata())
    records.record_transition(engine, deployment_id, Phase.PULLING_SOURCE, PhaseMetadata())
    return deployment_id


async def test_help_loads_nothing_of_a_server(tmp_path: Path) -> None:
    for args in (["--help"], ["deploy", "--help"], ["ls", "--help"]):
        code, modules = await loaded({"PATH": os.environ["PATH"]}, tmp_path, *args)
        assert code == 0, args
        assert offending(modules, FOR_HELP) == [], args


async def test_reading_commands_on_this_machine_load_no_server_modules(
    settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    deployment_id = recorded(engine, project)
    env = {**os.environ, **settings.environment(), "COLUMNS": "200"}
    env.pop("SLIPWAY_API_URL", None)
    for args in (
        ["ls"],
        ["ls", "--project", project, "--json"],
        ["status", deployment_id],
        ["status", deployment_id[:8], "--json"],
        ["logs", deployment_id],
    ):
        code, modules = await loaded(env, tmp_path, *args)
        assert code == 0, args
        assert "sqlalchemy" in modules, "it did ask the database"
        assert offending(modules, ON_THIS_MACHINE) == [], args


async def test_reading_commands_from_another_machine_load_no_server_modules(
    settings: Settings, client: Client, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    deployment_id = recorded(engine, project)
    app = create_app(settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    async with serving(app) as url:
        env = {
            "PATH": os.environ["PATH"],
            "SLIPWAY_API_URL": url,
            "SLIPWAY_API_TOKEN": TOKEN,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "COLUMNS": "200",
        }
        for args in (
            ["ls", "--project", project],
            ["status", deployment_id[:8]],
            ["logs", deployment_id, "--json"],
        ):
            code, modules = await loaded(env, tmp_path, *args)
            assert code == 0, args
            assert "httpx" in modules, "it did ask the API"
            assert offending(modules, FROM_ELSEWHERE) == [], args
