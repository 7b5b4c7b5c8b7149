"""The HTTP API against the session's real components: plain endpoints through httpx's ASGI
transport, the event stream and the schemathesis run through a real server on loopback."""

import asyncio
import io
import itertools
import json
import tarfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client

from slipway.settings import Settings
from starter.devstack import ui_url
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.components import free_port
from tests.helpers import SUCCESS_TRANSITIONS, fetch, make_site
from tests.running import RunningWorker

TOKEN = f"test-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD = 2 * 1024 * 1024
ENDED = {"active", "failed", "cancelled", "superseded"}


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(token=SecretStr(TOKEN), max_upload_bytes=MAX_UPLOAD)


@pytest.fixture
def http_app(
    settings: Settings, client: Client, engine: sa.Engine, api_settings: ApiSettings
) -> FastAPI:
    return create_app(settings, api_settings, client=client, engine=engine)


@pytest.fixture
async def http(http_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, with the token."""
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH, timeout=60
    ) as http:
        yield http


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free loopback port, in this event loop (where the
    in-process worker runs too); yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def pack(site: Path) -> bytes:
    """The site as a .tar.gz, as a client would upload it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(site.rglob("*")):
            tar.add(path, arcname=path.relative_to(site).as_posix(), recursive=False)
    return buffer.getvalue()


async def upload(
    http: httpx.AsyncClient,
    archive: bytes,
    project: str,
    *,
    key: str | None = None,
    name: str = "site.tar.gz",
) -> httpx.Response:
    """POST /api/deployments with the archive as multipart."""
    return await http.post(
        "/api/deployments",
        files={"file": (name, archive, "application/gzip")},
        data={"project": project},
        headers={"Idempotency-Key": key} if key else {},
    )


async def until(
    http: httpx.AsyncClient,
    deployment_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 120,
) -> dict[str, Any]:
    """Poll GET /api/deployments/{id} until `done(document)`; returns that document."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        document: dict[str, Any] = (await http.get(f"/api/deployments/{deployment_id}")).json()
        if done(document):
            return document
        assert asyncio.get_running_loop().time() < deadline, f"{deployment_id}: {document}"
        await asyncio.sleep(0.05)


async def until_ended(
    http: httpx.AsyncClient, deployment_id: str, timeout: float = 120
) -> dict[str, Any]:
    """Poll the deployment until it has ended; returns its last document."""
    return await until(http, deployment_id, lambda d: d.get("status") in ENDED, timeout)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(event, id, data) of each event of a text/event-stream response."""
    name, event_id, data = "message", None, []
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, event_id, json.loads("\n".join(data))
            name, event_id, data = "message", None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


async def test_every_endpoint_but_healthz_wants_the_token(
    http_app: FastAPI, http: httpx.AsyncClient
) -> None:
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as anonymous:
        assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
        some_id = uuid.uuid4()
        for method, path in (
            ("GET", "/api/deployments"),
            ("POST", "/api/deployments"),
            ("GET", f"/api/deployments/{some_id}"),
            ("GET", f"/api/deployments/{some_id}/logs"),
            ("GET", f"/api/deployments/{some_id}/events"),
            ("POST", f"/api/deployments/{some_id}/cancel"),
            ("POST", f"/api/deployments/{some_id}/resume"),
            ("POST", "/api/projects/example/rollback"),
            ("GET", "/api/deployments/stuck"),
            ("GET", "/api/analytics/phases"),
            ("GET", "/api/events"),
            ("GET", "/openapi.json"),
        ):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                answer = await anonymous.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers)
                assert answer.json() == {"detail": "unauthorized"}
                assert answer.headers["www-authenticate"] == "Bearer"
        for path in ("/", f"/deployments/{some_id}", "/static/page.js"):
            answer = await anonymous.get(path)
            assert answer.status_code == 401 and TOKEN not in answer.text
        assert (await anonymous.get("/?token=wrong")).status_code == 401

        # The page's link trades the token for a cookie that only reads.
        answer = await anonymous.get(f"/?token={TOKEN}")
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert "httponly" in answer.headers["set-cookie"].lower()
        assert (await anonymous.get("/api/deployments")).status_code == 200
        assert (await anonymous.post(f"/api/deployments/{some_id}/cancel")).status_code == 401
        assert (await http.post(f"/api/deployments/{some_id}/cancel")).status_code == 404
    document = (await http.get("/openapi.json")).json()
    assert "bearer" in json.dumps(document["components"]["securitySchemes"]).lower()


async def test_deploy_read_list_and_timeline_over_http(
    http: httpx.AsyncClient,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    answer = await upload(http, pack(make_site(tmp_path / "site", "over http")), project)
    assert answer.status_code == 202, answer.text
    deployment_id = answer.json()["id"]
    assert answer.headers["location"] == f"/api/deployments/{deployment_id}"

    # Readable at once: the request waited for its row.
    first = await http.get(f"/api/deployments/{deployment_id}")
    assert first.status_code == 200
    document = await until_ended(http, deployment_id)
    assert {"phase", "progress", "metadata", "updatedAt", "status"} <= set(document)
    assert (document["status"], document["phase"], document["progress"]) == (
        "active",
        "active",
        100,
    )
    assert document["project"] == project and document["eta"] is None
    assert document["temporalUrl"] == ui_url(settings, f"deploy-{deployment_id}")
    assert document["source"] == "upload site.tar.gz"
    assert "over http" in fetch(settings, project).text

    logs = (await http.get(f"/api/deployments/{deployment_id}/logs")).json()
    assert [e["message"] for e in logs if e["message"].startswith("Phase transition")] == (
        SUCCESS_TRANSITIONS
    )
    later = (await http.get(f"/api/deployments/{deployment_id}/logs?after={logs[2]['id']}")).json()
    assert later == logs[3:]

    listed = (await http.get(f"/api/deployments?project={project}")).json()
    assert [d["id"] for d in listed] == [deployment_id]
    active = (await http.get(f"/api/deployments?project={project}&status=active")).json()
    assert [d["id"] for d in active] == [deployment_id]
    assert (await http.get(f"/api/deployments?project={project}&status=failed")).json() == []

    spans = (await http.get(f"/api/deployments/{deployment_id}/timeline")).json()
    assert [s["phase"] for s in spans] == [
        "queued",
        "pulling_source",
        "building",
        "copying_files",
        "creating_symlinks",
        "updating_routes",
        "health_check",
        "active",
    ]
    for span, following in itertools.pairwise(spans):
        assert span["endedAt"] == following["startedAt"]
        assert span["durationSeconds"] >= 0
    assert spans[-1]["endedAt"] is None


async def test_a_retried_request_with_the_same_key_starts_one_deployment(
    http: httpx.AsyncClient, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    archive = pack(make_site(tmp_path / "site", "once"))
    key = f"ci-build-{uuid.uuid4()}"
    answers = await asyncio.gather(*(upload(http, archive, project, key=key) for _ in range(3)))
    assert {a.status_code for a in answers} == {202}
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    (deployment_id,) = ids
    assert (await until_ended(http, deployment_id))["status"] == "active"
    again = await upload(http, archive, project, key=key)
    assert again.status_code == 202 and again.json()["id"] == deployment_id
    listed = (await http.get(f"/api/deployments?project={project}")).json()
    assert [d["id"] for d in listed] == [deployment_id]

    elsewhere = await upload(http, archive, f"{project}-b", key=key)
    assert elsewhere.status_code == 422
    assert "use a new key" in elsewhere.json()["detail"]


async def test_limits_and_validation_say_what_to_fix(
    http: httpx.AsyncClient, project: str, tmp_path: Path
) -> None:
    archive = pack(make_site(tmp_path / "site", "x"))

    def problem(answer: httpx.Response, status: int) -> str:
        assert answer.status_code == status, answer.text
        detail = answer.json()["detail"]
        assert isinstance(detail, str)
        return detail

    assert "invalid project name 'Bad_Name'" in problem(
        await upload(http, archive, "Bad_Name"), 422
    )
    assert "not a .tar.gz" in problem(await upload(http, archive, project, name="site.exe"), 422)
    missing = await http.post("/api/deployments", data={"project": project})
    assert "file: Field required" in problem(missing, 422)
    bad_commit = await http.post(
        "/api/deployments",
        files={"file": ("s.tar.gz", archive)},
        data={"project": project, "commit": "a b"},
    )
    assert "commit: use 1-200 letters" in problem(bad_commit, 422)

    # Just over the limit: refused while copying; far over it: refused while it streams in.
    for size in (MAX_UPLOAD + 1, MAX_UPLOAD * 3):
        assert "larger than" in problem(await upload(http, b"\0" * size, project), 413)

    assert "deployment_id" in problem(await http.get("/api/deployments/not-a-uuid"), 422)
    assert "is recorded" in problem(await http.get(f"/api/deployments/{uuid.uuid4()}"), 404)
    assert "status" in problem(await http.get("/api/deployments?status=sleeping"), 422)
    assert "project: invalid project name" in problem(
        await http.get("/api/deployments?project=-x"), 422
    )
    assert "olderThan" in problem(await http.get("/api/deployments/stuck?olderThan=soon"), 422)
    assert "since" in problem(await http.get("/api/analytics/phases?since=forever"), 422)
    assert "has no active deployment" in problem(
        await http.post(f"/api/projects/{project}/rollback"), 409
    )


async def test_cancel_resume_rollback_and_stuck_over_http(
    http: httpx.AsyncClient,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    ids = []
    for text in ("first", "second"):
        answer = await upload(http, pack(make_site(tmp_path / text, text)), project)
        ids.append(answer.json()["id"])
        assert (await until_ended(http, ids[-1]))["status"] == "active"

    answer = await http.post(f"/api/projects/{project}/rollback")
    assert answer.status_code == 202
    back = await until_ended(http, answer.json()["id"])
    assert back["status"] == "active" and back["metadata"]["release"] == ids[0]
    answer = await http.post(f"/api/projects/{project}/rollback", json={"to": ids[1]})
    forward = await until_ended(http, answer.json()["id"])
    assert forward["metadata"]["release"] == ids[1]

    assert "nothing to cancel" in (await http.post(f"/api/deployments/{ids[0]}/cancel")).text
    resumed = await http.post(f"/api/deployments/{ids[0]}/resume")
    assert resumed.status_code == 409 and "nothing to resume" in resumed.json()["detail"]

    # A big site is still copying when the cancel arrives; the second release keeps serving.
    big = make_site(tmp_path / "big", "big", extra_files=10000)
    running = (await upload(http, pack(big), project)).json()["id"]

    await until(http, running, lambda d: d["phase"] == "copying_files")
    answer = await http.post(f"/api/deployments/{running}/cancel")
    assert answer.status_code == 202, answer.text
    assert (await until_ended(http, running))["status"] == "cancelled"

    # Its row says cancelled a moment before its workflow has closed: until then, 409.
    answer = await http.post(f"/api/deployments/{running}/resume")
    while answer.status_code == 409 and "still running" in answer.json()["detail"]:
        await asyncio.sleep(0.1)
        answer = await http.post(f"/api/deployments/{running}/resume")
    assert answer.status_code == 202 and answer.json()["message"] == "resuming"
    await until(http, running, lambda d: d["status"] != "cancelled")
    assert (await until_ended(http, running, timeout=180))["status"] == "active"

    stuck = await http.get("/api/deployments/stuck?olderThan=1s")
    assert stuck.status_code == 200 and isinstance(stuck.json(), list)


async def test_events_push_each_transition_and_log_line_until_it_ends(
    http_app: FastAPI, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    async with (
        serving(http_app) as base,
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as http,
    ):
        answer = await upload(http, pack(make_site(tmp_path / "s", "streamed", 300)), project)
        deployment_id = answer.json()["id"]
        seen: list[tuple[str, str | None, Any]] = []
        async with http.stream("GET", f"/api/deployments/{deployment_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async with asyncio.timeout(120):
                seen = [event async for event in events(stream)]

        names = [name for name, _, _ in seen]
        assert names[-1] == "end" and names.count("end") == 1
        assert seen[-1][2]["status"] == "active" and seen[-1][2]["progress"] == 100
        logs = [data for name, _, data in seen if name == "log"]
        assert [e["message"] for e in logs if e["message"].startswith("Phase transition")] == (
            SUCCESS_TRANSITIONS
        )
        assert [int(i) for name, i, _ in seen if name == "log"] == [e["id"] for e in logs]
        progress = [data["progress"] for name, _, data in seen if name == "state"]
        assert progress == sorted(progress) and len(set(progress)) >= 2

        # A reconnecting EventSource resumes after the last line it saw.
        after = logs[3]["id"]
        headers = {"Last-Event-ID": str(after)}
        async with http.stream(
            "GET", f"/api/deployments/{deployment_id}/events", headers=headers
        ) as stream:
            resumed = [event async for event in events(stream)]
        assert [d["id"] for n, _, d in resumed if n == "log"] == [e["id"] for e in logs[4:]]
        assert resumed[-1][0] == "end"


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    http_app: FastAPI, worker: RunningWorker
) -> None:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    async with serving(http_app) as base:
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            document = (await http.get("/openapi.json")).json()
        # The event streams never end by themselves; test_events covers them.
        schema = schemathesis.openapi.from_dict(document).exclude(path_regex="/events$")

        def run() -> int:
            calls = 0
            for result in schema.get_all_operations():
                operation = result.ok()
                for mode in (
                    schemathesis.GenerationMode.POSITIVE,
                    schemathesis.GenerationMode.NEGATIVE,
                ):

                    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
                    @hypothesis.settings(
                        max_examples=15,
                        deadline=None,
                        database=None,
                        derandomize=True,
                        suppress_health_check=list(hypothesis.HealthCheck),
                    )
                    def check(case: schemathesis.Case) -> None:
                        nonlocal calls
                        calls += 1
                        case.call_and_validate(
                            base_url=base, headers=AUTH, checks=checks, timeout=60
                        )

                    try:
                        check()
                    except hypothesis.errors.Unsatisfiable:
                        # Nothing to get wrong in a request without parameters.
                        assert mode is schemathesis.GenerationMode.NEGATIVE
            return calls

        assert await asyncio.to_thread(run) > 100
