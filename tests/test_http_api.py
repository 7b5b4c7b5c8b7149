"""The HTTP API against the session's real components: plain endpoints through httpx's ASGI
transport, the event stream and the schemathesis run through a real server on loopback."""

import asyncio
import hashlib
import io
import itertools
import json
import logging
import os
import re
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

# Hypothesis imports this lazily while it generates; generation runs in a thread, deep in
# recursion, where pytest's rewriting of the module (hypothesis is a pytest plugin) can trip
# CPython 3.11's AST recursion check ("AST constructor recursion depth mismatch"). Imported
# here, at the top of the stack, it is loaded before.
import hypothesis.strategies._internal.random  # noqa: F401
import pytest
import schemathesis
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from schemathesis.checks import CHECKS
from schemathesis.engine import events as engine_events
from schemathesis.engine import from_schema
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import positive_data_acceptance
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter, DefaultFormatter

from slipway.settings import Settings
from starter.devstack import ui_url
from starter.http.app import create_app, server_config
from starter.http.auth import (
    COOKIE,
    CSRF_COOKIE,
    FORMER_COOKIE,
    READ,
    csrf_token,
    sign_session,
)
from starter.http.config import ApiSettings
from starter.http.redaction import redact
from tests.components import free_port
from tests.helpers import (
    ANCIENT_DAYS,
    SUCCESS_TRANSITIONS,
    ancient_stuck,
    fetch,
    make_site,
    wait_for,
)
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
async def running(config: uvicorn.Config) -> AsyncIterator[str]:
    """A real uvicorn with this config, in this event loop (where the in-process worker runs
    too); yields its base URL."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        await task


def serving(app: FastAPI) -> AbstractAsyncContextManager[str]:
    """The app behind a real uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", timeout_graceful_shutdown=1
    )
    return running(config)


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
            ("POST", "/api/projects/example/stop"),
            ("POST", "/api/projects/example/start"),
            ("POST", "/api/projects/example/restart"),
            ("DELETE", "/api/projects/example"),
            ("GET", "/api/deployments/stuck"),
            ("GET", "/api/analytics/phases"),
            ("GET", "/api/events"),
            ("GET", "/openapi.json"),
            ("GET", "/docs"),
            ("GET", "/docs/assets/swagger-ui-bundle.js"),
            ("GET", "/docs/assets/docs.js"),
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
    # Operations are named as a client's methods would be.
    operations = {
        operation["operationId"]
        for path in document["paths"].values()
        for operation in path.values()
    }
    assert {
        "createDeployment",
        "getDeployment",
        "cancelDeployment",
        "rollbackProject",
    } <= operations


async def test_docs_are_swagger_ui_served_whole_by_slipway_to_token_and_session(
    http_app: FastAPI, http: httpx.AsyncClient
) -> None:
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as browser:
        assert (await browser.get("/docs")).status_code == 401
        page = await http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "://" not in page.text, "the page names no other host"
        references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(
            references
        )
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            assert (await browser.get(reference)).status_code == 401, reference
            asset = await http.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 0, reference
        script = (await http.get("/docs/assets/docs.js")).text
        assert '"/openapi.json"' in script and "://" not in script
        assert "SwaggerUIBundle" in (await http.get("/docs/assets/swagger-ui-bundle.js")).text
        for unknown in ("/docs/assets/page.js", "/docs/assets/..%2Fapp.py", "/docs/assets/core.py"):
            assert (await http.get(unknown)).status_code == 404, unknown

        # The page's session reads the docs as it reads the OpenAPI document.
        assert (await browser.get(f"/?token={TOKEN}")).status_code == 303
        assert (await browser.get("/docs")).text == page.text
        assert (await browser.get("/openapi.json")).status_code == 200
        for reference in references:
            assert (await browser.get(reference)).status_code == 200, reference


def set_cookie(answer: httpx.Response, name: str) -> tuple[str, set[str]]:
    """The value the answer sets for a cookie, and its attributes in lower case."""
    for header in answer.headers.get_list("set-cookie"):
        pair, *attributes = header.split(";")
        key, _, value = pair.partition("=")
        if key == name:
            return value, {attribute.strip().lower() for attribute in attributes}
    raise AssertionError(f"{answer} sets no {name} cookie")


async def test_the_pages_session_acts_only_with_its_csrf_token_and_is_not_the_token(
    http_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=http_app)
    some_id = uuid.uuid4()

    async def status(
        method: str,
        path: str,
        cookie: str = "",
        bearer: str = "",
        csrf: str = "",
        origin: str = "",
    ) -> int:
        headers = {"Cookie": cookie} if cookie else {}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if csrf:
            headers["X-CSRF-Token"] = csrf
        if origin:
            headers["Origin"] = origin
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return (await client.request(method, path, headers=headers)).status_code

    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as browser:
        answer = await browser.get(f"/?token={TOKEN}")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert not any(TOKEN in header for header in answer.headers.get_list("set-cookie"))
    value, attributes = set_cookie(answer, COOKIE)
    assert {"httponly", "samesite=strict", "path=/", "max-age=43200"} <= attributes
    assert "secure" not in attributes
    # The cookie that held the token itself is dropped.
    assert "max-age=0" in set_cookie(answer, FORMER_COOKIE)[1]
    cookie = f"{COOKIE}={value}"

    # It reads, the page included; it acts only with its CSRF token (from the cookie the
    # page reads, not HttpOnly) and from this origin; nor is it a bearer token.
    for path in ("/api/deployments", "/", f"/deployments/{some_id}", "/static/page.js"):
        assert await status("GET", path, cookie) == 200, path
    assert await status("GET", "/projects/some-project", cookie) == 200
    csrf, csrf_attributes = set_cookie(answer, CSRF_COOKIE)
    assert "httponly" not in csrf_attributes and "samesite=strict" in csrf_attributes
    cancel = f"/api/deployments/{some_id}/cancel"
    assert await status("POST", cancel, cookie) == 401
    wrong = csrf[:-1] + ("1" if csrf.endswith("0") else "0")
    assert await status("POST", cancel, cookie, csrf=wrong) == 401
    assert await status("POST", cancel, cookie, csrf=csrf, origin="http://evil.test") == 401
    assert await status("POST", cancel, cookie, csrf=csrf) == 404  # past the check: no such id
    assert await status("POST", cancel, cookie, csrf=csrf, origin="http://api.test") == 404
    assert await status("POST", cancel, csrf=csrf) == 401
    # A read session (SLIPWAY_API_PAGE_ACTIONS=false) acts on nothing, CSRF token or not.
    read = sign_session(TOKEN, int(time.time()) + 60, READ)
    assert await status("GET", "/api/deployments", f"{COOKIE}={read}") == 200
    assert await status("POST", cancel, f"{COOKIE}={read}", csrf=csrf_token(TOKEN, read)) == 401
    assert await status("POST", f"/api/deployments/{some_id}/cancel", bearer=value) == 401
    assert await status("GET", "/api/deployments", bearer=value) == 401
    assert await status("POST", f"/api/deployments/{some_id}/cancel", bearer=TOKEN) == 404

    # The token is no session, under the old cookie's name or the new one.
    for refused in (f"{FORMER_COOKIE}={TOKEN}", f"{COOKIE}={TOKEN}"):
        for path in ("/api/deployments", "/", "/static/page.js"):
            assert await status("GET", path, refused) == 401, (refused, path)

    # Expired, tampered with, or signed under another token: refused.
    scope, expires, nonce, signature = value.split(".")
    later = f"{scope}.{int(expires) + 3600}.{nonce}.{signature}"
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    for bad in (
        sign_session(TOKEN, int(time.time()) - 1),
        later,
        flipped,
        f"read.{expires}.{nonce}.{signature}",
        f"admin.{expires}.{nonce}.{signature}",
        sign_session(f"{TOKEN}-rotated", int(time.time()) + 3600),
        "",
        "...",
        "read.x.y.z",
    ):
        for path in ("/api/deployments", "/"):
            assert await status("GET", path, f"{COOKIE}={bad}") == 401, (bad, path)
    assert await status("GET", "/", f"{COOKIE}={sign_session(TOKEN, int(time.time()) + 60)}") == 200

    # With the page's actions turned off, its link starts a read session, with no CSRF token.
    services = http_app.state.services
    read_only = create_app(
        services.settings,
        ApiSettings(token=SecretStr(TOKEN), page_actions=False),
        client=services.client,
        engine=services.engine,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=read_only), base_url="http://api.test"
    ) as browser:
        answer = await browser.get(f"/?token={TOKEN}")
    assert set_cookie(answer, COOKIE)[0].startswith("read.")
    assert "max-age=0" in set_cookie(answer, CSRF_COOKIE)[1]

    # Over HTTPS the cookie is Secure.
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as secure:
        answer = await secure.get(f"/deployments/{some_id}?token={TOKEN}")
    assert answer.status_code == 303 and answer.headers["location"] == f"/deployments/{some_id}"
    assert "secure" in set_cookie(answer, COOKIE)[1]


def test_redact_masks_every_token_parameter() -> None:
    for given, expected in (
        ("/?token=abc", "/?token=***"),
        ("/deployments/x?a=1&token=abc&b=2", "/deployments/x?a=1&token=***&b=2"),
        ("/?token=a&token=b", "/?token=***&token=***"),
        ("/?%74oken=abc", "/?%74oken=***"),
        ("/?Token=abc", "/?Token=***"),
        ("/?tokens=abc&a=token", "/?tokens=abc&a=token"),
        ("/no/query", "/no/query"),
        (
            '127.0.0.1:5 - "GET /?token=abc HTTP/1.1" 303',
            '127.0.0.1:5 - "GET /?token=*** HTTP/1.1" 303',
        ),
    ):
        assert redact(given) == expected, given


async def test_the_token_reaches_no_log_line(
    http_app: FastAPI, api_settings: ApiSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """The server as `slipway api` runs it, its access log formatted as uvicorn prints it."""
    config = server_config(http_app, api_settings.model_copy(update={"port": free_port()}))
    lines: list[str] = []

    class Capture(logging.Handler):
        def __init__(self, formatter: logging.Formatter) -> None:
            super().__init__()
            self.setFormatter(formatter)

        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    formats = LOGGING_CONFIG["formatters"]
    captures = {
        logging.getLogger("uvicorn.access"): Capture(AccessFormatter(formats["access"]["fmt"])),
        logging.getLogger("uvicorn.error"): Capture(DefaultFormatter(formats["default"]["fmt"])),
    }
    for logger, handler in captures.items():
        logger.addHandler(handler)
    caplog.set_level(logging.INFO)
    some_id = uuid.uuid4()
    try:
        async with (
            running(config) as base,
            httpx.AsyncClient(base_url=base) as browser,
        ):
            for path in (
                f"/?token={TOKEN}",
                f"/deployments/{some_id}?token={TOKEN}&from=link",
                f"/?%74oken={TOKEN}",
                f"/?Token={TOKEN}",
                "/?token=wrong",
            ):
                await browser.get(path)
            assert (await browser.get("/")).status_code == 200
            async with asyncio.timeout(10):
                while not any('"GET / HTTP/1.1" 200' in line for line in lines):
                    await asyncio.sleep(0.02)
    finally:
        for logger, handler in captures.items():
            logger.removeHandler(handler)

    log = "\n".join(lines)
    assert '"GET /?token=*** HTTP/1.1" 303' in log
    assert f'"GET /deployments/{some_id}?token=***&from=link HTTP/1.1" 303' in log
    assert '"GET /?token=*** HTTP/1.1" 401' in log
    assert TOKEN not in log
    # Nothing else the server logged carries it either (the test's own client logs its URLs).
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert not any(TOKEN in record.getMessage() for record in server_records)


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

    # The same new key for two projects at the same moment: one is queued, the other told;
    # the one queued goes active. Several rounds, so that the requests meet at each step.
    winners = []
    for round_ in range(4):
        key = f"race-{uuid.uuid4()}"
        racing = await asyncio.gather(
            upload(http, archive, f"{project}-c{round_}", key=key),
            upload(http, archive, f"{project}-d{round_}", key=key),
        )
        assert sorted(a.status_code for a in racing) == [202, 422], [a.text for a in racing]
        winners += [a.json()["id"] for a in racing if a.status_code == 202]
    for won in winners:
        assert (await until_ended(http, won))["status"] == "active"


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
    over = problem(await http.get("/api/deployments/stuck?limit=501"), 422)
    assert over.startswith("limit: 501 is over") and "SLIPWAY_STUCK_MAX_LIMIT" in over
    assert "limit" in problem(await http.get("/api/deployments/stuck?limit=0"), 422)
    assert "after" in problem(await http.get("/api/deployments/stuck?after=soon"), 422)
    assert "since" in problem(await http.get("/api/analytics/phases?since=forever"), 422)
    assert "has no active deployment" in problem(
        await http.post(f"/api/projects/{project}/rollback"), 409
    )


async def test_an_upload_streams_into_the_store_and_is_written_nowhere_else(
    http_app: FastAPI, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    site = make_site(tmp_path / "site", "streamed")
    (site / "noise.bin").write_bytes(os.urandom(MAX_UPLOAD * 7 // 8))
    archive = pack(site)
    half = len(archive) * 2 // 3
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="project"\r\n\r\n'
        f"{project}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="site.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    uploads = settings.layout.uploads
    arriving: list[int] = []

    def incoming() -> list[int]:
        found = uploads.glob(".incoming-*") if uploads.is_dir() else []
        return [path.stat().st_size for path in found]

    async def body() -> AsyncIterator[bytes]:
        yield head + archive[:half]
        # The first bytes are in the store's scratch file before the rest is sent.
        await wait_for("the upload's first bytes in the store", lambda: any(incoming()), 30)
        arriving.extend(incoming())
        yield archive[half:] + f"\r\n--{boundary}--\r\n".encode()

    async with serving(http_app) as base, httpx.AsyncClient(base_url=base, headers=AUTH) as http:
        answer = await http.post(
            "/api/deployments",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert answer.status_code == 202, answer.text
        ended = await until_ended(http, answer.json()["id"])
    assert ended["status"] == "active"
    assert arriving and 0 < arriving[0] <= half
    upload_id = hashlib.sha256(archive).hexdigest()[:32]
    assert ended["metadata"]["uploadId"] == upload_id
    assert incoming() == []
    assert not (settings.home / "api-uploads").exists()
    assert "streamed" in fetch(settings, project).text


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
    cancelled = await until_ended(http, running)
    # It keeps the phase and progress it reached; a stack is served only when asked for.
    assert cancelled["status"] == "cancelled" and cancelled["progress"] >= 50
    assert cancelled["metadata"]["failedPhase"] not in (None, "queued", "failed")
    assert "stack" not in cancelled["metadata"]
    listed = (await http.get(f"/api/deployments?project={project}")).json()
    assert all("stack" not in d["metadata"] for d in listed)
    asked = (await http.get(f"/api/deployments/{running}?stack=true")).json()
    assert "stack" in asked["metadata"]

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


async def test_stuck_deployments_come_a_page_at_a_time(
    settings: Settings, client: Client, engine: sa.Engine, api_settings: ApiSettings
) -> None:
    # Each page is a bounded number of deployments, the longest stuck first; its Link
    # header names the next, until the last.
    small = settings.model_copy(update={"stuck_limit": 2, "stuck_max_limit": 3})
    app = create_app(small, api_settings, client=client, engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH
    ) as http:
        statuses = ["queued", "building", "deploying", "queued", "deploying"]
        with ancient_stuck(engine, statuses) as ids:
            pages: list[list[str]] = []
            url: str | None = f"/api/deployments/stuck?olderThan={ANCIENT_DAYS}d"
            while url is not None:
                answer = await http.get(url)
                assert answer.status_code == 200, answer.text
                pages.append([found["id"] for found in answer.json()])
                assert {found["kind"] for found in answer.json()} == {"orphaned"}
                url = answer.links.get("next", {}).get("url")
            assert pages == [ids[:2], ids[2:4], ids[4:]]

            whole = await http.get(f"/api/deployments/stuck?olderThan={ANCIENT_DAYS}d&limit=3")
            assert [found["id"] for found in whole.json()] == ids[:3]
            assert "olderThan=3000d&limit=3&after=" in whole.links["next"]["url"]
            over = await http.get("/api/deployments/stuck?limit=4")
            assert over.status_code == 422
            assert "over the most one page holds here, 3" in over.json()["detail"]

        document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/api/deployments/stuck"]["get"]
    limit = next(param for param in operation["parameters"] if param["name"] == "limit")
    assert limit["schema"]["default"] == 2
    assert {"type": "integer", "minimum": 1, "maximum": 3} in limit["schema"]["anyOf"]


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


UPLOAD = "POST /api/deployments"
SOURCES = ("PUT /api/projects/{name}/source", "POST /api/projects/{name}/deployments")
ENV = ("PATCH /api/projects/{name}/env", "POST /api/projects/{name}/env/import")
CONTENT = (UPLOAD, "POST /api/uploads", "PUT /api/blobs/{digest}", *SOURCES, *ENV)
"""The operations of uploads, git sources and environment variables, whose rules a JSON
Schema cannot all state."""


@schemathesis.check
def upload_acceptance(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """positive_data_acceptance for the uploads, which schemathesis cannot send as the
    schema asks. The schema states (in the multipart encoding) that the file part's name ends
    with an archive's suffix, but schemathesis names the part after its field, `file`, so each
    of its valid archive uploads is refused with a 422 about the file's name. And a content
    upload's rules that no JSON Schema can state are refused with a 422 that names them: the
    manifest's entries must form a tree whose links stay inside it (`manifest: `), a deployed
    upload must have all its contents (`manifest: `), a blob must hash to its name (`blob: `),
    an Idempotency-Key names one project's deployment (which archive uploads never reach:
    their file's name is refused first), and a repository must be one git can fetch, named
    by the request or set for the project before (`source: `), and an environment variable
    must be set to be unset, a `.env` file's lines must read and an environment must stay
    within the server's limits (`env: `), and a preview's name must fit beside its
    project's in a DNS label (`preview: `). This accepts those refusals
    and holds every other answer to positive_data_acceptance."""
    if case.operation.label not in CONTENT:
        return None
    if response.status_code == 422:
        detail = response.json()["detail"]
        if detail.startswith("file: ") and " is not a .tar.gz" in detail:
            return None
        if detail.startswith(("manifest: ", "blob: ", "source: ", "env: ", "preview: ")):
            return None
        if detail.startswith("Idempotency-Key ") and "; use a new key for " in detail:
            return None
    return positive_data_acceptance(ctx, response, case)


def schemathesis_config(base: str) -> schemathesis.Config:
    """`st run --checks all` on a small budget: every check schemathesis ships, through every
    phase (examples, coverage, fuzzing, stateful), at a fixed seed."""
    return schemathesis.Config.from_dict(
        {
            "seed": 1,
            "base-url": base,
            "headers": AUTH,
            "request-timeout": 60,
            "continue-on-failure": True,
            # `--checks all` also turns max_response_time on, at its default limit.
            "checks": {"enabled": True, "max_response_time": 10},
            "generation": {"max-examples": 10, "deterministic": True, "database": "none"},
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
                for name in CONTENT
            ],
        }
    )


def run_schemathesis(schema: BaseSchema) -> tuple[list[str], set[str], int]:
    """Every failure the run reports, the checks that ran and how many requests it sent."""
    failures: list[str] = []
    ran: set[str] = set()
    calls = 0
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            calls += len(event.recorder.interactions)
            for node in itertools.chain.from_iterable(event.recorder.checks.values()):
                ran.add(node.name)
                if node.failure_info is not None:
                    failure = node.failure_info.failure
                    failures.append(
                        f"{node.name}: {failure.title}: {failure.message}\n"
                        f"{node.failure_info.code_sample}"
                    )
        elif isinstance(event, engine_events.NonFatalError):
            failures.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, engine_events.FatalError):
            failures.append(repr(event.exception))
        elif isinstance(event, engine_events.EngineFinished):
            failures.extend(map(str, event.failures))
    return failures, ran, calls


async def test_schemathesis_runs_every_check_and_finds_nothing(
    settings: Settings,
    client: Client,
    engine: sa.Engine,
    api_settings: ApiSettings,
    worker: RunningWorker,
) -> None:
    # A delete of a project that another test deployed through its own server's queue
    # (the database is shared) is refused once that gone server's worker has not taken up
    # its part within the pickup time, or (with cancel) once a deployment it cancelled has
    # not ended in time: both short here, within the response-time check.
    quick = settings.model_copy(
        update={"lifecycle_pickup_seconds": 3.0, "lifecycle_cancel_wait_seconds": 3.0}
    )
    http_app = create_app(quick, api_settings, client=client, engine=engine)
    async with serving(http_app) as base:
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            document = (await http.get("/openapi.json")).json()
        config = schemathesis_config(base)
        # The event streams never end by themselves; test_events covers them.
        schema = schemathesis.openapi.from_dict(document, config=config).exclude(
            path_regex="/events$"
        )
        upload = schema.config.checks_config_for(operation=schema["/api/deployments"]["POST"])
        assert not upload.positive_data_acceptance.enabled
        failures, ran, calls = await asyncio.to_thread(run_schemathesis, schema)

    assert failures == [], "\n\n".join(failures)
    # Every check ran; three find nothing to judge here. use_after_free deletes a resource
    # and expects it gone: the API deletes nothing. ensure_resource_availability reads what a
    # request created: only an upload of a real archive or a rollback of a project with an
    # active deployment creates, and no generated request is either (the tests above read
    # those). object_level_authorization compares what two users see: there is one token.
    assert set(CHECKS.get_all_names()) <= ran
    assert calls > 300
