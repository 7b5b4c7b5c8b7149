"""Push webhooks signed as GitHub, GitLab and Gitea sign them, against the session's real
components and a real git repository: a push to the project's branch deploys the commit
pushed, once per delivery; anything unsigned is refused and queues nothing."""

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from slipway.settings import Settings
from slipway.tables import deployments, projects
from starter.http.app import create_app
from starter.http.config import ApiSettings
from starter.projects import set_git
from tests.git_server import Repo, make_repo
from tests.helpers import fetch, outcome, row
from tests.running import RunningWorker

SECRET = f"hook-{uuid.uuid4().hex}"


@pytest.fixture
async def hooks(
    settings: Settings, client: Client, engine: sa.Engine
) -> AsyncIterator[httpx.AsyncClient]:
    """The API in process, with no token: webhooks need none."""
    app = create_app(
        settings,
        ApiSettings(token=SecretStr(uuid.uuid4().hex), max_hook_bytes=64 * 1024),
        client=client,
        engine=engine,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http


@pytest.fixture
def repo(tmp_path: Path, settings: Settings, engine: sa.Engine, project: str) -> Repo:
    made = make_repo(tmp_path, "site")
    set_git(engine, settings, project, made.bare.as_uri(), branch="main", webhook_secret=SECRET)
    return made


def push(ref: str, after: str, **extra: object) -> bytes:
    return json.dumps({"ref": ref, "after": after, "before": "0" * 40, **extra}).encode()


def github(body: bytes, delivery: str, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }


def count(engine: sa.Engine, project: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(deployments.join(projects))
                .where(projects.c.name == project)
            ).scalar_one()
        )


async def test_a_signed_push_to_the_branch_deploys_its_commit_once_per_delivery(
    hooks: httpx.AsyncClient,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    repo: Repo,
    project: str,
) -> None:
    commit = repo.commit({"index.html": "<h1>pushed</h1>\n"})
    body = push("refs/heads/main", commit)
    delivery = str(uuid.uuid4())
    answer = await hooks.post(
        f"/api/hooks/git/{project}", content=body, headers=github(body, delivery)
    )
    assert answer.status_code == 202, answer.text
    deployment_id = answer.json()["id"]
    again = await hooks.post(
        f"/api/hooks/git/{project}", content=body, headers=github(body, delivery)
    )
    assert again.status_code == 202 and again.json()["id"] == deployment_id
    assert await outcome(client, deployment_id) is None
    assert "pushed" in fetch(settings, project).text
    assert row(engine, deployment_id).metadata["sourceCommit"] == commit
    assert count(engine, project) == 1


async def test_gitlab_and_gitea_pushes_deploy_too(
    hooks: httpx.AsyncClient,
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    repo: Repo,
    project: str,
) -> None:
    first = repo.commit({"index.html": "<h1>from gitlab</h1>\n"})
    body = push("refs/heads/main", first, checkout_sha=first)
    answer = await hooks.post(
        f"/api/hooks/git/{project}",
        content=body,
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET},
    )
    assert answer.status_code == 202, answer.text
    assert await outcome(client, answer.json()["id"]) is None
    assert "from gitlab" in fetch(settings, project).text

    second = repo.commit({"index.html": "<h1>from gitea</h1>\n"})
    body = push("refs/heads/main", second)
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = await hooks.post(
        f"/api/hooks/git/{project}",
        content=body,
        headers={
            "X-Gitea-Event": "push",
            "X-Gitea-Delivery": str(uuid.uuid4()),
            "X-Gitea-Signature": signature,
        },
    )
    assert answer.status_code == 202, answer.text
    assert await outcome(client, answer.json()["id"]) is None
    assert "from gitea" in fetch(settings, project).text


async def test_what_is_not_a_signed_push_to_the_branch_queues_nothing(
    hooks: httpx.AsyncClient,
    client: Client,
    engine: sa.Engine,
    worker: RunningWorker,
    repo: Repo,
    project: str,
) -> None:
    commit = repo.commit({"index.html": "<h1>never</h1>\n"})
    url = f"/api/hooks/git/{project}"
    body = push("refs/heads/main", commit)
    unsigned = await hooks.post(url, content=body, headers={"X-GitHub-Event": "push"})
    assert unsigned.status_code == 401
    wrong = await hooks.post(url, content=body, headers=github(body, "d1", secret="not-it"))
    assert wrong.status_code == 401
    accepted = await hooks.post(url, content=body, headers=github(body, "d2"))
    assert accepted.status_code == 202 and accepted.json()["id"]
    other = push("refs/heads/feature", commit)
    answer = await hooks.post(url, content=other, headers=github(other, "d3"))
    assert answer.status_code == 202 and "not to main" in answer.json()["ignored"]
    ping = await hooks.post(url, content=body, headers=github(body, "d4", event="ping"))
    assert ping.status_code == 202 and "not a push" in ping.json()["ignored"]
    deleted = push("refs/heads/main", "0" * 40, deleted=True)
    gone = await hooks.post(url, content=deleted, headers=github(deleted, "d5"))
    assert gone.status_code == 202 and "deleted" in gone.json()["ignored"]
    big = push("refs/heads/main", commit, padding="x" * 70_000)
    too_big = await hooks.post(url, content=big, headers=github(big, "d6"))
    assert too_big.status_code == 413
    stranger = await hooks.post(
        "/api/hooks/git/no-such-project", content=body, headers=github(body, "d7")
    )
    assert stranger.status_code == 401
    assert await outcome(client, accepted.json()["id"]) is None
    assert count(engine, project) == 1
