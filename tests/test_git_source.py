"""Deploying from git, with real git and no network: bare repositories served over HTTPS by
git's smart HTTP on loopback (a private one behind basic auth), over ssh with a deploy key and
over file://, through the session's Temporal, PostgreSQL, Traefik and Caddy."""

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.adapters.beat import Beat
from activities.adapters.git import Repository
from activities.phases.pulling_source import pull_git
from slipway.git_remote import Credentials
from slipway.models import DeploymentInput, GitSource
from slipway.phases import Status
from slipway.project_sources import ProjectError
from slipway.settings import Settings
from slipway.submission import submit
from slipway.tables import deployment_logs, deployments, projects
from slipway.workflow_ids import deployment_workflow_id
from starter import api
from starter.projects import set_git, show
from tests.components import free_port, require
from tests.git_server import Authority, git, make_authority, make_repo, serving_git
from tests.helpers import fetch, outcome, row, wait_for, workflows_of
from tests.running import RunningWorker
from tests.ssh_server import keypair, serving_ssh, sshd_available

TOKEN = f"tok-{uuid.uuid4().hex}"


@dataclass
class Forge:
    """The test's git server: its base URL, the requests it answered, and where its
    repositories live."""

    url: str
    requests: list[str]
    root: Path
    authority: Authority


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    root = tmp_path_factory.mktemp("forge")
    authority = make_authority(root / "ca")
    with serving_git(root, authority, TOKEN) as (url, requests):
        yield Forge(url, requests, root, authority)


@pytest.fixture
def git_settings(settings: Settings, forge: Forge) -> Settings:
    return settings.model_copy(update={"git_ca_file": forge.authority.ca_file})


@pytest.fixture
async def git_worker(client: Client, git_settings: Settings) -> AsyncIterator[RunningWorker]:
    async with RunningWorker(client, git_settings) as running:
        yield running


def site(version: str, extra: int = 0) -> dict[str, str]:
    files = {"index.html": f"<h1>site {version}</h1>\n"}
    files.update({f"assets/f{i}.txt": f"asset {i}\n" for i in range(extra)})
    return files


def loose_objects(mirror: Path) -> int:
    counted = git("--git-dir", str(mirror), "count-objects", "-v")
    return int(next(line for line in counted.splitlines() if line.startswith("count:")).split()[1])


async def deploy_git(
    client: Client, settings: Settings, project: str, git_source: GitSource | None
) -> tuple[str, str | None]:
    deployment_id = await api.start_deployment(client, settings, None, project, git=git_source)
    return deployment_id, await outcome(client, deployment_id)


async def test_a_branch_deploys_its_commit_and_a_redeploy_fetches_only_what_is_new(
    client: Client,
    git_settings: Settings,
    engine: sa.Engine,
    git_worker: RunningWorker,
    forge: Forge,
    project: str,
) -> None:
    repo = make_repo(forge.root, f"site-{project}")
    first = repo.commit(site("one", extra=150))
    source = GitSource(url=f"{forge.url}/site-{project}.git")
    deployment_id, failure = await deploy_git(client, git_settings, project, source)
    assert failure is None
    assert "site one" in fetch(git_settings, project).text
    meta = row(engine, deployment_id).metadata
    assert (meta["sourceCommit"], meta["sourceRef"]) == (first, "main")
    assert meta["sourceUrl"] == source.url
    release = git_settings.layout.release(project, deployment_id)
    assert not (release / ".git").exists()

    mirror = git_settings.layout.mirror(project)
    packed_before = loose_objects(mirror)
    second = repo.commit({"index.html": "<h1>site two</h1>\n"})
    deployment_id, failure = await deploy_git(client, git_settings, project, source)
    assert failure is None
    assert "site two" in fetch(git_settings, project).text
    assert row(engine, deployment_id).metadata["sourceCommit"] == second
    # Only the new commit, its tree and the changed file crossed: 3 new loose objects.
    assert loose_objects(mirror) - packed_before == 3


async def test_tags_commits_and_file_urls_resolve_to_their_commit(
    client: Client,
    git_settings: Settings,
    engine: sa.Engine,
    git_worker: RunningWorker,
    forge: Forge,
    project: str,
) -> None:
    repo = make_repo(forge.root, f"tagged-{project}")
    tagged = repo.commit(site("tagged"))
    repo.tag("v1")
    repo.commit(site("later"))
    url = repo.bare.as_uri()
    deployment_id, failure = await deploy_git(
        client, git_settings, project, GitSource(url=url, ref="v1")
    )
    assert failure is None
    assert "site tagged" in fetch(git_settings, project).text
    assert row(engine, deployment_id).metadata["sourceCommit"] == tagged
    deployment_id, failure = await deploy_git(
        client, git_settings, project, GitSource(url=url, ref=tagged)
    )
    assert failure is None
    assert row(engine, deployment_id).metadata["sourceRef"] == tagged


async def test_a_private_repository_opens_with_the_projects_sealed_token_and_shows_it_nowhere(
    client: Client,
    git_settings: Settings,
    engine: sa.Engine,
    git_worker: RunningWorker,
    forge: Forge,
    project: str,
) -> None:
    repo = make_repo(forge.root, f"private-{project}")
    repo.commit(site("private"))
    url = f"{forge.url}/private-{project}.git"
    refused, failure = await deploy_git(client, git_settings, project, GitSource(url=url))
    assert failure is not None and "could not read Username" in failure, failure
    assert row(engine, refused).metadata["attempt"] == 1

    secret = set_git(engine, git_settings, project, url, branch="main", token=TOKEN)
    assert secret is not None
    shown = show(engine, project)
    assert (shown.git_url, shown.branch, shown.token, shown.webhook_secret) == (
        url,
        "main",
        True,
        True,
    )
    deployment_id, failure = await deploy_git(client, git_settings, project, None)
    assert failure is None
    assert "site private" in fetch(git_settings, project).text

    histories = [
        (await client.get_workflow_handle(w).fetch_history()).to_json()
        for w in await workflows_of(client, project, [deployment_id])
    ]
    with engine.connect() as conn:
        stored = [
            *conn.execute(sa.select(projects.c.source).where(projects.c.name == project)),
            *conn.execute(sa.select(deployments).where(deployments.c.id == deployment_id)),
            *conn.execute(
                sa.select(deployment_logs).where(deployment_logs.c.deployment_id == deployment_id)
            ),
        ]
    for text in (*histories, str(stored)):
        assert TOKEN not in text and secret not in text
    assert row(engine, deployment_id).metadata["sourceUrl"] == url


async def test_a_repository_over_ssh_opens_with_the_projects_sealed_deploy_key(
    client: Client,
    git_settings: Settings,
    engine: sa.Engine,
    git_worker: RunningWorker,
    forge: Forge,
    project: str,
) -> None:
    require(sshd_available(), "OpenSSH's server is not installed (scripts/sshd installs it)")
    repo = make_repo(forge.root, f"ssh-{project}")
    commit = repo.commit(site("over ssh"))
    private_key, public_key = keypair(forge.root / f"key-{project}")
    with serving_ssh(forge.root / f"sshd-{project}") as server:
        url = server.url(repo.bare)
        refused, failure = await deploy_git(client, git_settings, project, GitSource(url=url))
        assert failure is not None and "Permission denied (publickey)" in failure, failure
        assert row(engine, refused).metadata["attempt"] == 1

        server.authorize(public_key)
        set_git(engine, git_settings, project, url, branch="main", ssh_key=private_key)
        assert show(engine, project).ssh_key
        deployment_id, failure = await deploy_git(client, git_settings, project, None)
        assert failure is None, failure
        assert "site over ssh" in fetch(git_settings, project).text
        assert row(engine, deployment_id).metadata["sourceCommit"] == commit

    # The key lived in a private file for one command only; the host it met is remembered.
    private = git_settings.layout.git_home(project)
    assert [p.name for p in private.iterdir() if p.is_file()] == ["known_hosts"]
    known = private / "known_hosts"
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[127.0.0.1]:{server.port}", "-f", str(known)], capture_output=True
    )
    assert found.returncode == 0

    # A host that answers with another key than the one remembered is not trusted.
    first_host_key = (forge.root / f"sshd-{project}" / "host_key.pub").read_text().split()[:2]
    with serving_ssh(forge.root / f"impostor-{project}") as impostor:
        impostor.authorize(public_key)
        with known.open("a") as lines:
            lines.write(f"[127.0.0.1]:{impostor.port} {' '.join(first_host_key)}\n")
        set_git(engine, git_settings, project, impostor.url(repo.bare), branch="main")
        refused, failure = await deploy_git(client, git_settings, project, None)
    assert failure is not None and "Host key verification failed" in failure, failure
    history = await client.get_workflow_handle(
        deployment_workflow_id(deployment_id)
    ).fetch_history()
    with engine.connect() as conn:
        stored = [
            *conn.execute(sa.select(projects.c.source).where(projects.c.name == project)),
            *conn.execute(
                sa.select(deployment_logs).where(deployment_logs.c.deployment_id == deployment_id)
            ),
        ]
    body = private_key.splitlines()[1]
    for text in (history.to_json(), str(stored)):
        assert body not in text


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unreachable", "Failed to connect"),
        ("unknown-ref", "is not a branch, tag or commit"),
        ("too-big", "SLIPWAY_GIT_MAX_BYTES"),
        ("submodules", "submodules"),
    ],
)
async def test_a_repository_that_cannot_be_deployed_fails_once_saying_why(
    case: str,
    reason: str,
    client: Client,
    git_settings: Settings,
    engine: sa.Engine,
    forge: Forge,
    project: str,
) -> None:
    repo = make_repo(forge.root, f"{case}-{project}")
    repo.commit(site("base"))
    url, ref, settings = f"{forge.url}/{case}-{project}.git", None, git_settings
    if case == "unreachable":
        url = f"https://127.0.0.1:{free_port()}/nothing.git"
    elif case == "unknown-ref":
        ref = "no-such-branch"
    elif case == "too-big":
        repo.commit({"big.txt": base64.b64encode(os.urandom(300_000)).decode()})
        settings = git_settings.model_copy(update={"git_max_bytes": 100_000})
    else:
        inner = make_repo(forge.root, f"inner-{project}")
        inner.commit(site("inner"))
        git(
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            str(inner.bare),
            "vendor",
            cwd=repo.work,
        )
        repo.commit({}, "with a submodule")
    async with RunningWorker(client, settings):
        deployment_id, failure = await deploy_git(
            client, settings, project, GitSource(url=url, ref=ref)
        )
    assert failure is not None and reason in failure, failure
    view = row(engine, deployment_id)
    assert view.metadata["failedPhase"] == "pulling_source"
    assert view.metadata["attempt"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/site.git",
        "ftp://127.0.0.1/site.git",
        "https://u:p@127.0.0.1/s.git",
        "ssh://a]b/site.git",
        "https://127.0.0.1:99999/site.git",
    ],
)
async def test_a_url_git_may_not_fetch_is_refused_before_anything_starts(
    url: str, client: Client, git_settings: Settings, project: str
) -> None:
    with pytest.raises(ProjectError):
        await api.start_deployment(client, git_settings, None, project, git=GitSource(url=url))


def test_a_retried_pull_deploys_the_commit_it_resolved_first(
    git_settings: Settings, forge: Forge, project: str
) -> None:
    repo = make_repo(forge.root, f"retried-{project}")
    first = repo.commit(site("first"))
    layout = git_settings.layout
    deployment_id = str(uuid.uuid4())
    repository = Repository(
        mirror=layout.mirror(project),
        url=repo.bare.as_uri(),
        credentials=Credentials(),
        private=layout.git_home(project),
    )
    source = GitSource(url=repo.bare.as_uri(), ref="main")
    limits = git_settings.unpack_limits
    assert pull_git(layout, deployment_id, source, repository, limits, Beat()).commit == first
    # The attempt died before it finished; meanwhile the branch moved on.
    (layout.work(deployment_id) / "source.json").unlink()
    repo.commit(site("second"))
    again = pull_git(layout, deployment_id, source, repository, limits, Beat())
    assert again.commit == first
    assert "site first" in (layout.source(deployment_id) / "index.html").read_text()
    assert json.loads((layout.work(deployment_id) / "git.json").read_text())["commit"] == first


async def test_a_service_with_only_a_temporal_client_deploys_a_repository(
    git_settings: Settings,
    engine: sa.Engine,
    git_worker: RunningWorker,
    forge: Forge,
    project: str,
    temporal_env: object,
) -> None:
    repo = make_repo(forge.root, f"service-{project}")
    commit = repo.commit(site("from a service"))
    # Nothing but a Temporal client: no Slipway settings, database or shared disk.
    client = await Client.connect(
        git_settings.temporal_address, data_converter=pydantic_data_converter
    )
    await submit(
        client,
        git_settings.task_queue,
        DeploymentInput(project=project, git=GitSource(url=repo.bare.as_uri(), ref="main")),
    )
    deployment_id = await _first_deployment(engine, project)
    assert await outcome(client, deployment_id) is None
    assert "site from a service" in fetch(git_settings, project).text
    assert row(engine, deployment_id).metadata["sourceCommit"] == commit

    # A name that would make it another project's preview is refused, saying why.
    taken = f"x--{project}"
    await submit(
        client,
        git_settings.task_queue,
        DeploymentInput(project=taken, git=GitSource(url=repo.bare.as_uri(), ref="main")),
    )
    refused = await _first_deployment(engine, taken)
    await wait_for("the refusal", lambda: row(engine, refused).status is Status.FAILED, 60)
    assert "names previews" in row(engine, refused).metadata["error"]


async def _first_deployment(engine: sa.Engine, project: str) -> str:
    for _ in range(200):
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(deployments.c.id)
                .join(projects, projects.c.id == deployments.c.project_id)
                .where(projects.c.name == project)
            ).scalar()
        if found:
            return str(found)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no deployment of {project} was recorded")
