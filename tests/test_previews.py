"""Preview deployments against the session's real components (Temporal, PostgreSQL, Traefik,
Caddy) and a real git repository: a push to another branch than the production one deploys
its preview at `<name>--<project>`, a second push updates it, `promote` switches production to
its release without rebuilding, deleting the branch removes it, and the reconciler removes a
preview past its time to live; a client polling production throughout sees only 200s and
never a preview's content before it is promoted."""

import asyncio
import hashlib
import hmac
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client

from activities.adapters.docker import LABEL_PROJECT, container_name, image_tag
from slipway import previews, queries, records
from slipway.metadata import PhaseMetadata
from slipway.models import DeploymentInput
from slipway.names import (
    InvalidNameError,
    preview_name_of,
    preview_site,
    validate_preview_name,
)
from slipway.phases import Mode, Status
from slipway.project_sources import ProjectError
from slipway.settings import Settings
from slipway.tables import projects
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id, reconcile_schedule_id
from starter import api
from starter.http.app import create_app
from starter.http.config import ApiSettings
from starter.projects import set_git, set_previews
from tests.apps import write_busybox_app
from tests.components import (
    Pebble,
    free_port,
    own_temp_dir,
    pebble_installed,
    require,
    web_ports,
    web_servers,
)
from tests.git_server import Repo, git, make_repo
from tests.helpers import Watcher, deploy_and_wait, fetch, make_site, outcome, row, wait_for
from tests.running import RunningWorker
from tests.test_cli import slipway
from tests.test_cli_imports import recorded
from tests.test_http_api import pack
from tests.test_replay import replayer

SECRET = f"hook-{uuid.uuid4().hex}"


@pytest.fixture
async def hooks(
    settings: Settings, client: Client, engine: sa.Engine
) -> AsyncIterator[httpx.AsyncClient]:
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
    set_previews(engine, settings, project, True)
    return made


async def pushed(
    hooks: httpx.AsyncClient, project: str, ref: str, after: str, **extra: object
) -> dict[str, object]:
    """A push signed as GitHub signs it; the API's answer."""
    body = json.dumps({"ref": ref, "after": after, "before": "0" * 40, **extra}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    answer = await hooks.post(
        f"/api/hooks/git/{project}",
        content=body,
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={signature}",
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 202, answer.text
    found: dict[str, object] = answer.json()
    return found


def text(settings: Settings, name: str) -> str:
    """What the name answers through Traefik, failing on anything but a 200."""
    answer = fetch(settings, name)
    assert answer.status_code == 200, (name, answer.status_code)
    return answer.text


def removed_at(engine: sa.Engine, site: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(projects.c.removed_at).where(projects.c.name == site)
        ).scalar()


def only_200s_of(watcher: Watcher, *allowed: str) -> None:
    """Every answer the watcher saw was a 200 holding one of the allowed texts."""
    assert watcher.answers
    wrong = [
        (status, body[:80])
        for status, body in watcher.answers
        if status != 200 or not any(a in body for a in allowed)
    ]
    assert not wrong, wrong[:5]


async def test_a_branch_preview_is_deployed_updated_promoted_and_removed_with_its_branch(
    hooks: httpx.AsyncClient,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    repo: Repo,
    project: str,
) -> None:
    production = repo.commit({"index.html": "<h1>production v1</h1>\n"})
    first = await pushed(hooks, project, "refs/heads/main", production)
    assert first["preview"] is None
    assert await outcome(client, str(first["id"])) is None
    assert "production v1" in text(settings, project)
    site = preview_site("feature-log-in", project)

    async with Watcher(settings, project) as watching:
        commit_a = repo.commit({"index.html": "<h1>preview A</h1>\n"}, branch="feature/Log-in")
        answer = await pushed(hooks, project, "refs/heads/feature/Log-in", commit_a)
        assert answer["preview"] == "feature-log-in"
        assert await outcome(client, str(answer["id"])) is None
        assert "preview A" in text(settings, site)
        view = row(engine, str(answer["id"]))
        assert view.project == site and view.status is Status.ACTIVE
        assert view.details.source_commit == commit_a

        commit_b = repo.commit({"index.html": "<h1>preview B</h1>\n"}, branch="feature/Log-in")
        update = await pushed(hooks, project, "refs/heads/feature/Log-in", commit_b)
        assert await outcome(client, str(update["id"])) is None
        assert "preview B" in text(settings, site)
        assert "production v1" in text(settings, project)
        await asyncio.sleep(0.3)
    only_200s_of(watching, "production v1")

    listed = api.list_previews(settings, engine, project)
    assert [(p.name, p.site, p.status) for p in listed] == [("feature-log-in", site, Status.ACTIVE)]
    assert listed[0].deployment_id == update["id"]
    assert listed[0].url.startswith(f"http://{site}.")
    assert listed[0].expires_at is not None
    # Every project's previews (other tests' among them), this one's included.
    assert site in {p.site for p in api.list_previews(settings, engine, None)}
    assert all(v.project == project for v in queries.recent(engine, project, None, 10))

    async with Watcher(settings, project) as watching:
        promotion = await api.promote(client, settings, engine, project, "feature-log-in")
        assert await outcome(client, promotion) is None
        await asyncio.sleep(0.3)
    only_200s_of(watching, "production v1", "preview B")
    assert "preview B" in watching.answers[-1][1]
    promoted = row(engine, promotion)
    assert promoted.project == project
    assert promoted.release == update["id"]
    assert promoted.details.mode is Mode.ROLLBACK
    assert "promote preview feature-log-in" in promoted.source
    assert not promoted.details.image_id  # nothing was built again
    assert "preview B" in text(settings, site)
    # A new run of either (resumed, or abandoned as orphaned) finds out what it was.
    assert previews.lineage(engine, promoted) == {"preview_of": "", "release_from": site}
    assert previews.lineage(engine, row(engine, str(update["id"]))) == {
        "preview_of": project,
        "release_from": "",
    }

    async with Watcher(settings, project) as watching:
        gone = await pushed(hooks, project, "refs/heads/feature/Log-in", "0" * 40, deleted=True)
        assert gone["removed"] is True and gone["preview"] == "feature-log-in"
        await wait_for("the preview's removal", lambda: removed_at(engine, site), 60)
        await wait_for(
            "its name to stop answering", lambda: fetch(settings, site).status_code == 404
        )
        await asyncio.sleep(0.3)
    only_200s_of(watching, "preview B")
    layout = settings.layout
    assert not layout.site(site).exists()
    assert not layout.route(site).exists()
    assert not layout.current(site).parent.exists()
    assert (layout.release(project, str(update["id"])) / "index.html").is_file()
    assert api.list_previews(settings, engine, project) == []
    again = await pushed(hooks, project, "refs/heads/feature/Log-in", "0" * 40, deleted=True)
    assert again["removed"] is False and "no preview" in str(again["ignored"])

    for workflow_id in (deployment_workflow_id(promotion), project_workflow_id(site)):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        await replayer().replay_workflow(history)

    back = await api.rollback(client, settings, engine, project)
    assert await outcome(client, back) is None
    assert row(engine, back).release == first["id"]
    assert "production v1" in text(settings, project)


async def test_a_preview_not_deployed_for_its_time_to_live_is_removed_by_the_reconciler(
    tmp_path: Path,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
) -> None:
    _, failed = await deploy_and_wait(
        client, settings, make_site(tmp_path / "prod", "production"), project
    )
    assert failed is None
    preview = await api.start_deployment(
        client, settings, make_site(tmp_path / "exp", "short-lived"), project, preview="exp"
    )
    assert await outcome(client, preview) is None
    site = preview_site("exp", project)
    assert "short-lived" in text(settings, site)

    report = await api.reconcile_now(client, settings)
    assert site not in report.expired_previews
    assert "short-lived" in text(settings, site)

    await asyncio.sleep(1.0)
    brief = settings.model_copy(update={"preview_ttl_seconds": 0.5})
    async with Watcher(settings, project) as watching:
        report = await api.reconcile_now(client, brief)
        assert site in report.expired_previews
        await wait_for("the expired preview's removal", lambda: removed_at(engine, site), 60)
        await asyncio.sleep(0.3)
    only_200s_of(watching, "production")
    assert fetch(settings, site).status_code == 404
    passes = client.get_workflow_handle(reconcile_schedule_id(settings.server) + "-now")
    history = await passes.fetch_history()
    await replayer().replay_workflow(history)
    assert not settings.layout.site(site).exists()
    assert row(engine, preview).status is Status.ACTIVE  # its record stays
    assert previews.preview_parent(engine, site) == project


async def test_preview_names_are_dns_labels_that_fit_beside_the_project(
    tmp_path: Path, client: Client, settings: Settings, engine: sa.Engine, project: str
) -> None:
    assert validate_preview_name("pr-42", project) == "pr-42"
    for bad in ("", "Feature", "a_b", "-a", "a-", "a--b", "x" * 60, "a.b", "../x"):
        with pytest.raises(InvalidNameError):
            validate_preview_name(bad, project)
    assert preview_name_of("feature/Log_in", project) == "feature-log-in"
    assert preview_name_of("///", project) is None
    long = preview_name_of("x" * 100, project)
    assert long is not None and len(preview_site(long, project)) == 63
    site = tmp_path / "site"
    make_site(site, "never")
    with pytest.raises(InvalidNameError):
        await api.start_deployment(client, settings, site, project, preview="Not_A_Label")
    with pytest.raises(api.DeploymentError, match="no preview"):
        await api.promote(client, settings, engine, project, "missing")


async def test_a_preview_takes_no_production_deployment_under_its_name(
    tmp_path: Path,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
) -> None:
    preview = await api.start_deployment(
        client, settings, make_site(tmp_path / "p", "preview only"), project, preview="pr-7"
    )
    assert await outcome(client, preview) is None
    site = preview_site("pr-7", project)
    with pytest.raises(api.DeploymentError, match="is a preview of"):
        await api.start_deployment(client, settings, make_site(tmp_path / "x", "x"), site)
    assert fetch(settings, project).status_code == 404  # production has nothing yet
    removed = await api.remove_preview(client, settings, engine, project, "pr-7", "by hand")
    assert removed
    await wait_for("the preview's removal", lambda: removed_at(engine, site), 60)
    assert git("--version").startswith("git version")


async def test_no_name_makes_one_project_another(
    tmp_path: Path, client: Client, settings: Settings, engine: sa.Engine, project: str
) -> None:
    site = make_site(tmp_path / "site", "mine")
    # `x--<project>` is how the project's preview `x` is named: no project takes such a name.
    taken = preview_site("x", project)
    with pytest.raises(api.DeploymentError, match="names previews"):
        await api.start_deployment(client, settings, site, taken)
    with pytest.raises(ProjectError, match="names previews"):
        set_git(engine, settings, taken, "https://git.localhost/app.git")
    assert previews.preview_parent(engine, taken) is None
    assert queries.project_server(engine, taken) is None
    # One named so before the rule, and deployed, stays its own: no preview takes it over.
    legacy = preview_site("y", project)
    recorded(engine, legacy)
    previews.check_site(engine, legacy, "")  # it still deploys as itself
    with pytest.raises(api.DeploymentError, match="project of its own"):
        await api.start_deployment(client, settings, site, project, preview="y")
    assert previews.preview_parent(engine, legacy) is None
    # A preview has no previews.
    preview = preview_site("z", project)
    records.register(
        engine,
        DeploymentInput(deployment_id=str(uuid.uuid4()), project=preview, preview_of=project),
        f"{preview}.localhost",
        PhaseMetadata(),
    )
    assert previews.preview_parent(engine, preview) == project
    with pytest.raises(api.DeploymentError, match="has no previews"):
        await api.start_deployment(client, settings, site, preview, preview="w")
    with pytest.raises(api.DeploymentError, match="is a preview of"):
        await api.start_deployment(client, settings, site, preview)


@pytest.fixture
def secure(base_settings: Settings) -> Iterator[tuple[Settings, str]]:
    """A server of this test's own whose Traefik has an HTTPS entry point with certificates
    from pebble (its DNS answers every name with 127.0.0.1), under a base domain of its own;
    and pebble's issuing root, as PEM."""
    require(pebble_installed(), "no pebble (scripts/pebble installs Debian's)")
    with own_temp_dir("slipway-previews-") as root:
        http_port = free_port()
        pebble = Pebble(root / "pebble", http_port).start()
        tag = uuid.uuid4().hex[:8]
        settings = base_settings.model_copy(
            update={
                "home": root / "home",
                "base_domain": "previews.test",
                **web_ports(),
                "http_port": http_port,
                "acme_ca": pebble.directory,
                "acme_ca_certificates": pebble.trust,
                "acme_email": "ops@slipway.test",
                "task_queue": f"t-{tag}",
                "server": f"pv{tag}",
            }
        )
        started = web_servers(settings)
        try:
            yield settings, pebble.issuing_root()
        finally:
            for service in reversed(started):
                service.stop()
            pebble.stop()


def get_secure(settings: Settings, host: str, trusted: str) -> httpx.Response:
    """GET over HTTPS as a browser asks for `host`, verified against the PEM root."""
    context = ssl.create_default_context(cadata=trusted)
    with httpx.Client(verify=context, timeout=5.0) as http:
        return http.get(
            f"https://127.0.0.1:{settings.https_port}/",
            headers={"Host": f"{host}:{settings.https_port}"},
            extensions={"sni_hostname": host},
        )


async def test_a_preview_answers_over_https_with_a_certificate_from_the_acme_ca(
    tmp_path: Path, client: Client, secure: tuple[Settings, str], project: str
) -> None:
    settings, root = secure
    async with RunningWorker(client, settings):
        _, failed = await deploy_and_wait(
            client, settings, make_site(tmp_path / "prod", "production"), project
        )
        assert failed is None
        preview = await api.start_deployment(
            client, settings, make_site(tmp_path / "tls", "secure preview"), project, preview="tls"
        )
        assert await outcome(client, preview) is None
    site = preview_site("tls", project)
    host = settings.project_host(site)
    assert "secure preview" in text(settings, site), "its HTTP keeps serving"

    def served() -> bool:
        try:
            answer = get_secure(settings, host, root)
        except (httpx.HTTPError, OSError):
            return False
        return answer.status_code == 200 and "secure preview" in answer.text

    await wait_for("the preview over HTTPS", served, 90)
    assert "production" in text(settings, project)
    production_route = settings.layout.route(project).read_text()
    assert "websecure" not in production_route, "production's base name is left as it was"


FAST = '[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\npath = "/"\n'


@pytest.fixture
def preview_images(docker_client: docker.DockerClient, project: str) -> Iterator[str]:
    """The site of this test's preview `next`; its containers and images go when it ends."""
    site = preview_site("next", project)
    yield site
    label = {"label": f"{LABEL_PROJECT}={site}"}
    for each in (site, project):  # the project's own run the promoted image
        mine = {"label": f"{LABEL_PROJECT}={each}"}
        for container in docker_client.containers.list(all=True, filters=mine):
            container.remove(force=True)
    for image in docker_client.images.list(filters=label):
        docker_client.images.remove(image.id, force=True)


async def test_an_app_preview_runs_its_own_container_and_its_promoted_image_is_kept(
    tmp_path: Path,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    containers: None,
    preview_images: str,
    docker_client: docker.DockerClient,
) -> None:
    site = preview_images
    v1 = write_busybox_app(tmp_path / "v1", version="v1", config=FAST)
    _, failed = await deploy_and_wait(client, settings, v1, project)
    assert failed is None
    v2 = write_busybox_app(tmp_path / "v2", version="v2", config=FAST)
    async with Watcher(settings, project) as watching:
        preview = await api.start_deployment(client, settings, v2, project, preview="next")
        assert await outcome(client, preview) is None
        await asyncio.sleep(0.3)
    only_200s_of(watching, "busybox app v1")
    assert "busybox app v2" in text(settings, site)
    label = {"label": f"{LABEL_PROJECT}={site}"}
    [running] = docker_client.containers.list(filters=label)
    assert running.name == container_name(site, preview)

    async with Watcher(settings, project) as watching:
        promotion = await api.promote(client, settings, engine, project, "next")
        assert await outcome(client, promotion) is None
        await asyncio.sleep(0.3)
    only_200s_of(watching, "busybox app v1", "busybox app v2")
    assert "busybox app v2" in text(settings, project)
    assert row(engine, promotion).release == preview
    assert docker_client.containers.get(container_name(project, promotion)).status == "running"

    async with Watcher(settings, project) as watching:
        assert await api.remove_preview(client, settings, engine, project, "next", "done")
        await wait_for("the preview's removal", lambda: removed_at(engine, site), 60)
        await api.reconcile_now(client, settings)
        await asyncio.sleep(0.3)
    only_200s_of(watching, "busybox app v2")
    assert docker_client.containers.list(all=True, filters=label) == []
    assert [i.tags for i in docker_client.images.list(filters=label)] == [
        [image_tag(site, preview)]
    ], "the promoted release's image is kept for production"
    assert fetch(settings, site).status_code == 404


async def test_the_cli_deploys_lists_and_promotes_a_preview_named_after_the_branch(
    tmp_path: Path,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
) -> None:
    production = make_site(tmp_path / "prod", "cli production")
    code, _, err = await slipway(
        settings, "deploy", str(production), "--project", project, "--wait"
    )
    assert code == 0, err
    checkout = make_site(tmp_path / "checkout", "cli preview")
    git("init", "-q", "-b", "Fix/Typo", str(checkout))
    code, out, err = await slipway(
        settings, "deploy", str(checkout), "--project", project, "--preview", "--wait"
    )
    assert code == 0, err
    site = preview_site("fix-typo", project)
    assert row(engine, out.split()[0]).project == site
    assert "cli preview" in text(settings, site)
    assert "cli production" in text(settings, project)

    named = make_site(tmp_path / "named", "cli named")
    code, _, err = await slipway(
        settings, "deploy", str(named), "--project", project, "--preview", "pr-9", "--wait"
    )
    assert code == 0, err
    assert "cli named" in text(settings, preview_site("pr-9", project))

    code, out, err = await slipway(settings, "ls", "--previews", "--project", project, "--json")
    assert code == 0, err
    assert sorted(p["name"] for p in json.loads(out)) == ["fix-typo", "pr-9"]
    code, out, _ = await slipway(settings, "ls", "--previews", "--project", project)
    assert code == 0 and "fix-typo" in out and "pr-9" in out

    code, _, err = await slipway(
        settings, "deploy", str(named), "--project", project, "--preview", "Bad--Name"
    )
    assert code == 2 and "invalid preview name" in err
    code, _, err = await slipway(settings, "promote", project, "no-such")
    assert code == 2 and "has no preview no-such" in err

    code, out, err = await slipway(settings, "promote", project, "fix-typo")
    assert code == 0, err
    assert "cli preview" in text(settings, project)

    code, out, err = await slipway(settings, "previews", "rm", project, "pr-9")
    assert code == 0 and "removing preview pr-9" in out, err
    site_9 = preview_site("pr-9", project)
    await wait_for("pr-9's removal", lambda: removed_at(engine, site_9), 60)
    code, _, err = await slipway(settings, "previews", "rm", project, "pr-9")
    assert code == 2 and "has no preview pr-9" in err

    code, out, err = await slipway(settings, "project", "set", project, "--previews")
    assert code == 0, err
    assert "on" in out.split("previews")[-1]


async def test_the_api_deploys_lists_promotes_and_removes_previews_behind_its_token(
    tmp_path: Path,
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
) -> None:
    token = uuid.uuid4().hex
    app = create_app(settings, ApiSettings(token=SecretStr(token)), client=client, engine=engine)
    auth = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        base = f"/api/projects/{project}/previews"
        for method, path in (
            ("GET", "/api/previews"),
            ("GET", base),
            ("POST", f"{base}/pr-1/promote"),
            ("DELETE", f"{base}/pr-1"),
        ):
            assert (await http.request(method, path)).status_code == 401, path
        assert (await http.get(base, headers=auth)).json() == []
        for method, path in (("POST", f"{base}/pr-1/promote"), ("DELETE", f"{base}/pr-1")):
            answer = await http.request(method, path, headers=auth)
            assert answer.status_code == 404, answer.text
            assert answer.json()["detail"] == f"{project} has no preview pr-1"
        longest = "a" * (63 - len(project))  # one too long beside the project's name
        answer = await http.delete(f"{base}/{longest}", headers=auth)
        assert answer.status_code == 404, answer.text
        answer = await http.delete(f"{base}/Bad--Name", headers=auth)
        assert answer.status_code == 422 and answer.json()["detail"].startswith("preview:")

        production = make_site(tmp_path / "prod", "api production")
        _, failed = await deploy_and_wait(client, settings, production, project)
        assert failed is None
        archive = {"file": ("site.tar.gz", pack(make_site(tmp_path / "p", "api preview")))}
        answer = await http.post(
            "/api/deployments",
            headers=auth,
            data={"project": project, "preview": longest},
            files=archive,
        )
        assert answer.status_code == 422 and answer.json()["detail"].startswith("preview: ")
        answer = await http.post(
            "/api/deployments", headers=auth, data={"project": project, "preview": "pr-1"},
            files=archive,
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        deployed = answer.json()["id"]
        assert await outcome(client, deployed) is None
        site = preview_site("pr-1", project)
        assert row(engine, deployed).project == site
        assert "api preview" in text(settings, site)
        assert "api production" in text(settings, project)

        [listed] = (await http.get(base, headers=auth)).json()
        assert (listed["name"], listed["site"], listed["status"]) == ("pr-1", site, "active")
        assert listed["deploymentId"] == deployed and site in listed["url"]
        everyone = (await http.get("/api/previews", headers=auth)).json()
        assert site in [p["site"] for p in everyone]

        answer = await http.post(f"{base}/pr-1/promote", headers=auth)
        assert answer.status_code == 202, answer.text
        promotion = answer.json()["id"]
        assert answer.headers["Location"] == f"/api/deployments/{promotion}"
        assert await outcome(client, promotion) is None
        assert row(engine, promotion).project == project
        assert "api preview" in text(settings, project)

        # The project is not deleted while it has a preview: the refusal names it.
        answer = await http.delete(f"/api/projects/{project}", headers=auth)
        assert answer.status_code == 409, answer.text
        assert f"{project} has previews ({site})" in answer.json()["detail"]
        assert "api preview" in text(settings, project)

        answer = await http.delete(f"{base}/pr-1", headers=auth)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "project": project,
            "preview": "pr-1",
            "message": "removal requested",
        }
        await wait_for("the preview's removal", lambda: removed_at(engine, site), 60)
        assert (await http.delete(f"{base}/pr-1", headers=auth)).status_code == 404
        assert (await http.get(base, headers=auth)).json() == []
        assert "api preview" in text(settings, project)
