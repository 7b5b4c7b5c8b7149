"""The hostile corpus as an attacker would send it: through the HTTP API and the CLI (an
archive, and a directory where the case can be one), against the session's real worker,
Temporal, PostgreSQL, Traefik and Caddy. Each upload must fail with its reason, write nothing
outside, leave no work dir, upload or stored object behind, and leave the previous release
serving. Independently, a link planted by hand in a live release is not followed by the web
server."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client
from typer.testing import CliRunner

from slipway.layout import Layout
from slipway.limits import MIB
from slipway.phases import Status
from slipway.settings import Settings
from starter import cli
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.helpers import deploy_and_wait, fetch, make_site, outcome, row
from tests.hostile import CASES, OUTSIDE, Corpus
from tests.running import RunningWorker

TOKEN = f"hostile-{uuid.uuid4().hex}"
AT_ONCE = 8
"""Cases sent through the API side by side, each to its own project."""


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """Limits low enough that every bomb and flood is refused within a second."""
    return settings.model_copy(update={"unpack_max_bytes": 32 * MIB, "unpack_max_files": 5_000})


@pytest.fixture
async def strict_worker(client: Client, strict: Settings) -> AsyncIterator[RunningWorker]:
    async with RunningWorker(client, strict) as running:
        yield running


def _stored_objects(layout: Layout) -> set[str]:
    store = layout.store
    return {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}


class Attempts:
    """What the corpus found: one line per upload that was not refused as it must be."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.layout = settings.layout
        self.wrong: list[str] = []

    def check(
        self,
        what: str,
        project: str,
        good: str,
        deployment_id: str | None,
        output: str,
        reason: str,
    ) -> None:
        """The upload was refused for `reason` and left everything as it was."""
        if reason not in output:
            self.wrong.append(f"{what}: refused without {reason!r}: {output[-400:]}")
        if deployment_id is not None:
            view = row(self.engine, deployment_id)
            upload_id = str(view.metadata.get("uploadId", ""))
            if view.status is not Status.FAILED or view.metadata.get("attempt") != 1:
                self.wrong.append(f"{what}: {view.status} on attempt {view.metadata}")
            if self.layout.work(deployment_id).exists():
                self.wrong.append(f"{what}: its work dir is left behind")
            if upload_id and self.layout.upload(upload_id).exists():
                self.wrong.append(f"{what}: its upload is left behind")
        if self.layout.current(project).readlink().name != good:
            self.wrong.append(f"{what}: current moved")
        answer = fetch(self.settings, project)
        if answer.status_code != 200 or f"good {project}" not in answer.text:
            self.wrong.append(f"{what}: the previous release stopped serving")


async def _through_api(
    http: httpx.AsyncClient, client: Client, archive: Path, project: str
) -> tuple[str | None, str]:
    answer = await http.post(
        "/api/deployments",
        files={"file": (archive.name, archive.read_bytes(), "application/octet-stream")},
        data={"project": project},
    )
    if answer.status_code != 202:
        return None, answer.text
    deployment_id = answer.json()["id"]
    return deployment_id, await outcome(client, deployment_id) or "it went active"


def _through_cli(settings: Settings, path: Path, project: str) -> tuple[str | None, str]:
    """`slipway deploy PATH --project P --wait` as a person types it, run in this process
    (its start-up cost, paid 40 times, is the CLI benchmark's business, not this test's)."""
    result = CliRunner().invoke(
        cli.app,
        ["deploy", str(path), "--project", project, "--wait"],
        env={**settings.environment(), "COLUMNS": "200"},
    )
    words = result.output.split()
    deployment_id = words[0] if words and len(words[0]) == 36 else None
    return deployment_id, result.output if result.exit_code != 0 else "it went active"


async def test_every_hostile_upload_is_refused_through_the_api_and_the_cli(
    client: Client,
    strict: Settings,
    engine: sa.Engine,
    strict_worker: RunningWorker,
    corpus: Corpus,
    tmp_path: Path,
) -> None:
    projects = {name: f"h-{uuid.uuid4().hex[:10]}" for name in CASES}
    goods = await asyncio.gather(
        *(
            deploy_and_wait(client, strict, make_site(tmp_path / p, f"good {p}"), p)
            for p in projects.values()
        )
    )
    assert all(failure is None for _, failure in goods)
    good = {
        p: deployment_id for p, (deployment_id, _) in zip(projects.values(), goods, strict=True)
    }
    stored = _stored_objects(strict.layout)
    attempts = Attempts(strict, engine)
    app = create_app(strict, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    transport = httpx.ASGITransport(app=app)
    gate = asyncio.Semaphore(AT_ONCE)

    async def through_api(http: httpx.AsyncClient, name: str) -> None:
        project = projects[name]
        async with gate:
            found = await _through_api(http, client, corpus.archive(name), project)
        attempts.check(f"{name} via the API", project, good[project], *found, CASES[name].reason)

    def through_cli() -> None:
        for name, case in CASES.items():
            project = projects[name]
            found = _through_cli(strict, corpus.archive(name), project)
            attempts.check(f"{name} via the CLI", project, good[project], *found, case.reason)
            if case.directory is not None:
                found = _through_cli(strict, corpus.directory(name), project)
                reason = case.directory_reason or case.reason
                attempts.check(f"{name} as a directory", project, good[project], *found, reason)

    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://api.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=120,
    ) as http:
        await asyncio.gather(*(through_api(http, name) for name in CASES))
    await asyncio.to_thread(through_cli)

    assert attempts.wrong == []
    assert _stored_objects(strict.layout) == stored
    assert not OUTSIDE.exists()
    assert not Path("/tmp/slipway-absolute.txt").exists()
    assert not any(strict.home.rglob("escaped*"))
    assert not any(tmp_path.rglob("escaped*"))


async def test_the_web_server_follows_no_link_planted_in_a_live_release(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    deployment_id, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "site", "planted"), project
    )
    assert failure is None
    secret = settings.home / "planted-secret.txt"
    secret.write_text(f"secret {uuid.uuid4().hex}")
    release = settings.layout.release(project, deployment_id)
    (release / "sub").mkdir()
    os.symlink("/etc/passwd", release / "passwd")
    os.symlink(secret, release / "absolute")
    os.symlink("../../../../planted-secret.txt", release / "relative")
    os.symlink("../..", release / "sub" / "up")
    os.symlink("index.html", release / "inside")

    for path in ("/passwd", "/absolute", "/relative", "/sub/up/releases", "/inside"):
        answer = fetch(settings, project, path)
        assert answer.status_code != 200, path
        assert "root:" not in answer.text and "secret" not in answer.text, path
    assert "planted" in fetch(settings, project).text
