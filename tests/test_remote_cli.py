"""The CLI on another machine: a process whose environment names only the API (no database,
no home, no Temporal address), against the API served by uvicorn on loopback in this test's
event loop and the session's workers."""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from slipway import queries, records
from slipway.names import preview_site
from slipway.settings import Settings
from slipway.tables import deployments, projects
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.components import free_port
from tests.git_server import make_repo
from tests.helpers import ANCIENT_DAYS, ancient_stuck, fetch, make_site, wait_for
from tests.running import RunningWorker
from tests.test_cli import slipway as on_the_server
from tests.test_http_api import TOKEN, pack, running

SLIPWAY = str(Path(sys.executable).parent / "slipway")


class CountingPuts:
    """The app, counting the blobs it is sent, and the manifests: whole or as changes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.puts = 0
        self.manifests = 0
        self.changes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            self.puts += scope["path"].startswith("/api/blobs/")
        if scope["type"] == "http" and scope["method"] == "POST":
            self.manifests += scope["path"] == "/api/uploads"
            self.changes += scope["path"].endswith("/changes")
        await self.app(scope, receive, send)


@dataclass
class Remote:
    """The API's address, the count of blobs sent to it, and a machine with nothing else."""

    url: str
    counter: CountingPuts
    machine: Path

    async def slipway(self, *args: str, token: str = TOKEN) -> tuple[int, str, str]:
        """Run the CLI as on another machine: its environment holds the API's address and
        token, a cache dir, and nothing of the server."""
        env = {
            "PATH": os.environ["PATH"],
            "SLIPWAY_API_URL": self.url,
            "SLIPWAY_API_TOKEN": token,
            "XDG_CACHE_HOME": str(self.machine / "cache"),
            "COLUMNS": "200",
        }
        process = await asyncio.create_subprocess_exec(
            SLIPWAY,
            *args,
            env=env,
            cwd=self.machine,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def remote(
    settings: Settings, client: Client, engine: sa.Engine, worker: RunningWorker, tmp_path: Path
) -> AsyncIterator[Remote]:
    app = create_app(settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    counter = CountingPuts(app)
    config = uvicorn.Config(
        counter,
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    machine = tmp_path / "elsewhere"
    machine.mkdir()
    async with running(config) as url:
        yield Remote(url, counter, machine)
    assert {p.name for p in machine.iterdir()} <= {"cache"}, "nothing but its cache"


async def test_deploy_status_logs_ls_rollback_and_projects_from_another_machine(
    remote: Remote, settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "site", "first", extra_files=40)
    code, out, err = await remote.slipway("deploy", str(site), "--project", project, "--wait")
    assert code == 0, err
    first = out.split()[0]
    uuid.UUID(first)
    assert "active" in out and "Temporal UI: http" in out
    assert remote.counter.puts == 41, "every content once"
    assert (remote.counter.manifests, remote.counter.changes) == (1, 0)
    assert "first" in fetch(settings, project).text

    # One file changed: one blob goes up.
    (site / "index.html").write_text("<h1>second</h1>\n")
    code, out, err = await remote.slipway(
        "deploy", str(site), "--project", project, "--wait", "--env", "GREETING=hello"
    )
    assert code == 0, err
    second = out.split()[0]
    assert remote.counter.puts == 42, "only the changed file"
    assert (remote.counter.manifests, remote.counter.changes) == (1, 1), "only what changed"
    assert "second" in fetch(settings, project).text
    sealed = queries.sealed_env(engine, second)
    assert set(sealed) == {"GREETING"} and "hello" not in sealed["GREETING"]

    code, out, err = await remote.slipway("status", first[:8], "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["id"], document["status"], document["project"]) == (first, "active", project)
    code, out, err = await remote.slipway("status", second[:8])
    assert code == 0 and "project health" in out and second in out, err

    code, out, err = await remote.slipway("logs", second[:8], "--json")
    assert code == 0, err
    assert [e["phase"] for e in json.loads(out)][-1] == "active"
    code, out, err = await remote.slipway("logs", second[:10], "--follow")
    assert code == 0 and out.count("Phase transition") == 8, err

    code, out, err = await remote.slipway("ls", "--project", project, "--json")
    assert code == 0, err
    assert [d["id"] for d in json.loads(out)] == [second, first]
    code, out, err = await remote.slipway("ls", "--project", project, "--limit", "1")
    assert code == 0 and second[:8] in out and second not in out and first[:8] not in out

    code, out, err = await remote.slipway("rollback", project, "--to", first[:8])
    assert code == 0 and "active" in out, err
    back = queries.get_deployment(engine, out.split()[0])
    assert back is not None and back.release == first
    assert "first" in fetch(settings, project).text

    # An archive goes as it is.
    archive = tmp_path / "site.tar.gz"
    archive.write_bytes(pack(make_site(tmp_path / "packed", "packed")))
    code, out, err = await remote.slipway(
        "deploy", str(archive), "--project", project, "--wait", "--env", "GREETING=hi"
    )
    assert code == 0, err
    packed = out.split()[0]
    assert "packed" in fetch(settings, project).text
    assert set(queries.sealed_env(engine, packed)) == {"GREETING"}

    code, out, err = await remote.slipway("projects", "--json")
    assert code == 0, err
    (listed,) = [p for p in json.loads(out) if p["name"] == project]
    assert listed["serving"] == packed and listed["deployments"] == 4

    # Prefixes: too short, unknown, ambiguous; and a token the API refuses.
    shared = uuid.uuid4().hex[:8]
    _plant(engine, project, [f"{shared}-0000-4000-8000-{n:012d}" for n in (1, 2)])
    for args, expected in (
        (("status", first[:7]), "at least its first 8 characters"),
        (("status", "not-an-id"), "invalid deployment id"),
        (("cancel", "00000000"), "no deployment id begins with '00000000'"),
        (("status", shared), "the start of several deployment ids"),
        (("deploy", str(site), "--project", "Bad_Name"), "invalid project name"),
        (("alerts",), "works on the server only"),
    ):
        code, out, err = await remote.slipway(*args)
        assert code == 2 and expected in err, (args, out, err)
        assert "Traceback" not in out + err
    code, _, err = await remote.slipway("ls", token="wrong")
    assert code == 2 and "refused the token" in err

    # On the server, without the API, the same commands print the same.
    for args in (
        ("ls", "--project", project),
        ("ls", "--project", project, "--json"),
        ("status", second[:8], "--json"),
        ("logs", first[:8], "--json"),
        ("status", shared),
    ):
        assert await remote.slipway(*args) == await on_the_server(settings, *args), args


def _plant(engine: sa.Engine, project: str, ids: list[str]) -> None:
    """Deployments whose ids share their first 8 characters, which chance never makes."""
    with engine.begin() as conn:
        project_id = conn.execute(
            sa.select(projects.c.id).where(projects.c.name == project)
        ).scalar_one()
        for deployment_id in ids:
            conn.execute(
                sa.insert(deployments).values(
                    id=deployment_id,
                    project_id=project_id,
                    status="failed",
                    phase="failed",
                    workflow_id=f"deploy-{deployment_id}",
                )
            )


async def test_stuck_pages_read_the_same_from_another_machine(
    remote: Remote, settings: Settings, engine: sa.Engine
) -> None:
    # The API's Link header gives the remote CLI the cursor the local one computes.
    older = f"{ANCIENT_DAYS}d"
    with ancient_stuck(engine, ["building", "queued", "deploying"]) as ids:
        first = ("stuck", "--older-than", older, "--limit", "2", "--json")
        code, out, err = await remote.slipway(*first)
        assert code == 0 and [found["id"] for found in json.loads(out)] == ids[:2], err
        assert (code, out, err) == await on_the_server(settings, *first)
        after = err.split("--after ")[1].strip()
        second = (*first, "--after", after)
        code, out, err = await remote.slipway(*second)
        assert code == 0 and [found["id"] for found in json.loads(out)] == ids[2:], err
        assert (code, out, err) == await on_the_server(settings, *second)
    code, _, err = await remote.slipway("stuck", "--limit", "501")
    assert code == 2 and "SLIPWAY_STUCK_MAX_LIMIT" in err, err


async def test_stuck_cancel_and_resume_from_another_machine(
    remote: Remote,
    settings: Settings,
    client: Client,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
) -> None:
    # Pinned to a server no worker serves yet, the deployment waits for one.
    other = settings.model_copy(update={"server": f"other-{uuid.uuid4().hex[:6]}"})
    records.pin(engine, project, other.server, settings.project_host(project))
    site = make_site(tmp_path / "site", "waited for")
    code, out, err = await remote.slipway("deploy", str(site), "--project", project)
    assert code == 0, err
    waiting = out.split()[0]

    found: list[dict[str, str]] = []

    async def diagnosed() -> bool:
        nonlocal found
        code, out, err = await remote.slipway("stuck", "--older-than", "1s", "--json")
        assert code == 0, err
        found = [d for d in json.loads(out) if d["id"] == waiting]
        return bool(found) and found[0]["kind"] == "no-worker"

    for _ in range(30):
        if await diagnosed():
            break
        await asyncio.sleep(0.5)
    assert found and found[0]["kind"] == "no-worker", found

    code, out, err = await remote.slipway("cancel", waiting[:8])
    assert code == 0 and out.startswith(waiting), err
    await wait_for("cancelled", lambda: queries.status_of(engine, waiting).value == "cancelled")

    # Once the server is back, the deployment resumes there.
    async with RunningWorker(client, other, host_only=True):
        while True:
            code, out, err = await remote.slipway("resume", waiting[:8])
            if "still running" not in err:
                break
            await asyncio.sleep(0.2)
        assert code == 0 and "active" in out, err
    assert "waited for" in fetch(settings, project).text
    code, out, err = await remote.slipway("cancel", waiting[:8])
    assert code == 1 and "nothing to cancel" in err


async def test_a_projects_repository_is_set_shown_and_deployed_from_another_machine(
    remote: Remote, settings: Settings, project: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "forge", "site")
    commit = repo.commit({"index.html": "<h1>from the repository</h1>\n"})
    token_file = tmp_path / "token"
    token_file.write_text("t0ken-never-shown\n")
    code, out, err = await remote.slipway(
        "project",
        "set",
        project,
        "--git",
        repo.bare.as_uri(),
        "--branch",
        "main",
        "--git-token-file",
        str(token_file),
    )
    assert code == 0, err
    assert "webhook secret (shown once):" in out and "t0ken-never-shown" not in out
    code, out, err = await remote.slipway("project", "show", project, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["gitUrl"], shown["branch"], shown["token"]) == (repo.bare.as_uri(), "main", True)
    assert "t0ken-never-shown" not in out

    code, out, err = await remote.slipway("deploy", "--project", project, "--wait")
    assert code == 0, err
    assert "from the repository" in fetch(settings, project).text
    code, out, err = await remote.slipway("status", out.split()[0], "--json")
    assert json.loads(out)["metadata"]["sourceCommit"] == commit

    code, out, err = await remote.slipway("deploy", ".", "--git", "x", "--project", project)
    assert code == 2 and "not both" in err
    code, out, err = await remote.slipway("logs", project, "--app")
    assert code == 2 and "no serving container" in err


async def test_domains_are_added_listed_and_removed_from_another_machine(
    remote: Remote, settings: Settings, project: str, tmp_path: Path
) -> None:
    code, out, err = await remote.slipway(
        "deploy", str(make_site(tmp_path / "s", "domains")), "--project", project, "--wait"
    )
    assert code == 0, err
    domain = f"{project}.example.test"
    code, out, err = await remote.slipway("domains", "add", project, domain, "--redirect-www")
    assert code == 0, err
    assert domain in out and "pending" in out
    code, out, err = await remote.slipway("domains", "ls", project, "--json")
    assert code == 0, err
    assert [d["name"] for d in json.loads(out)] == [domain]
    code, out, err = await remote.slipway("domains", "add", "never-deployed", domain)
    assert code == 2 and "no project never-deployed" in err
    code, out, err = await remote.slipway("domains", "rm", project, domain)
    assert code == 0 and f"removed {domain}" in out, err
    code, out, err = await remote.slipway("domains", "ls", project)
    assert code == 0 and "no domains" in out


async def test_previews_are_deployed_listed_promoted_and_removed_from_another_machine(
    remote: Remote, settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    production = make_site(tmp_path / "prod", "remote production")
    code, out, err = await remote.slipway("deploy", str(production), "--project", project, "--wait")
    assert code == 0, err

    # A directory goes up as a content upload, an archive as the multipart upload, a branch
    # of a repository through the git deployment: each to its own preview.
    tree = make_site(tmp_path / "tree", "remote tree preview")
    code, out, err = await remote.slipway(
        "deploy", str(tree), "--project", project, "--preview", "pr-1", "--wait"
    )
    assert code == 0, err
    tree_site = preview_site("pr-1", project)
    assert queries.get_deployment(engine, out.split()[0]).project == tree_site  # type: ignore[union-attr]
    archive = tmp_path / "site.tar.gz"
    archive.write_bytes(pack(make_site(tmp_path / "packed", "remote archive preview")))
    code, out, err = await remote.slipway(
        "deploy", str(archive), "--project", project, "--preview", "pr-2", "--wait"
    )
    assert code == 0, err
    repo = make_repo(tmp_path / "forge", "site")
    repo.commit({"index.html": "<h1>remote branch preview</h1>\n"}, branch="Feature/Login")
    code, out, err = await remote.slipway(
        "deploy", "--git", repo.bare.as_uri(), "--ref", "Feature/Login",
        "--project", project, "--preview", "--wait",
    )  # fmt: skip
    assert code == 0, err
    assert "remote tree preview" in fetch(settings, tree_site).text
    assert "remote archive preview" in fetch(settings, preview_site("pr-2", project)).text
    branch_site = preview_site("feature-login", project)
    assert "remote branch preview" in fetch(settings, branch_site).text
    assert "remote production" in fetch(settings, project).text

    code, out, err = await remote.slipway("ls", "--previews", "--project", project, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert sorted(p["name"] for p in listed) == ["feature-login", "pr-1", "pr-2"]
    assert {p["status"] for p in listed} == {"active"}
    code, out, err = await remote.slipway("ls", "--previews")
    assert code == 0 and "pr-1" in out and "feature-login" in out, err

    code, out, err = await remote.slipway("promote", project, "pr-1")
    assert code == 0, err
    promotion = queries.get_deployment(engine, out.split()[0])
    assert promotion is not None and promotion.project == project
    assert "remote tree preview" in fetch(settings, project).text
    code, _, err = await remote.slipway("promote", project, "no-such")
    assert code == 2 and "has no preview no-such" in err

    code, out, err = await remote.slipway("previews", "rm", project, "pr-2")
    assert code == 0 and "removing preview pr-2" in out, err
    await wait_for("pr-2's removal", lambda: _removed(engine, preview_site("pr-2", project)), 60)
    assert fetch(settings, preview_site("pr-2", project)).status_code == 404
    code, _, err = await remote.slipway("previews", "rm", project, "pr-2")
    assert code == 2 and "has no preview pr-2" in err
    code, _, err = await remote.slipway("previews", "rm", project, "Bad--Name")
    assert code == 2 and "invalid preview name" in err
    code, out, err = await remote.slipway("ls", "--previews", "--project", project, "--json")
    assert sorted(p["name"] for p in json.loads(out)) == ["feature-login", "pr-1"]
    code, _, err = await remote.slipway("ls", "--previews", token="wrong")
    assert code != 0 and "refused the token" in err


def _removed(engine: sa.Engine, site: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(sa.select(projects.c.removed_at).where(projects.c.name == site))
        return found.scalar() is not None
