"""The deployments page in real headless Chromium (Debian's, driven by Playwright), against a
real server: its session, live progress on the list, a deployment's timeline, log and
Temporal link."""

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from pydantic import SecretStr
from temporalio.client import Client

from slipway.settings import Settings
from starter.devstack import ui_url
from starter.http.app import create_app
from starter.http.auth import COOKIE, CSRF_COOKIE
from starter.http.config import ApiSettings
from tests.components import require
from tests.helpers import fetch, make_site
from tests.running import RunningWorker
from tests.test_http_api import AUTH, TOKEN, pack, serving, upload

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORK_PHASES = [
    "pulling_source",
    "building",
    "copying_files",
    "creating_symlinks",
    "updating_routes",
    "health_check",
]


@pytest.fixture
def http_app(settings: Settings, client: Client, engine: sa.Engine) -> FastAPI:
    return create_app(settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(CHROMIUM.exists(), f"no {CHROMIUM} (scripts/chromium installs Debian's chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def assert_screenshot(path: Path, minimum: int) -> None:
    """A PNG with something on it: a page holding only a heading makes about 8 kB."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > minimum, f"{path} is only {len(data)} bytes"


async def progress_of(page: Page, deployment_id: str) -> tuple[str, str] | None:
    """The (status, progress) the list shows for a deployment, if it shows it."""
    row = page.locator(f'tr[data-id="{deployment_id}"]')
    if not await row.count():
        return None
    return (await row.get_attribute("data-status") or "", await row.locator(".pct").inner_text())


async def test_list_and_deployment_pages_follow_deployments_live(
    http_app: FastAPI,
    browser: Browser,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    errors: list[str] = []
    async with (
        serving(http_app) as base,
        httpx.AsyncClient(base_url=base, headers=AUTH, timeout=60) as http,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda err: errors.append(str(err)))
        await page.goto(f"{base}/?token={TOKEN}")
        assert page.url == f"{base}/", "the token leaves the address once it is a session"
        cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
        assert set(cookies) == {COOKIE, CSRF_COOKIE}, "a write session, with its CSRF token"
        session = cookies[COOKIE]
        assert not cookies[CSRF_COOKIE].get("httpOnly"), "the page reads its CSRF token"
        assert TOKEN not in session["value"], "the browser holds a session, not the token"
        assert session.get("httpOnly") and session.get("sameSite") == "Strict"
        await page.wait_for_selector("#connection:text('live')")

        # Queued after the page opened: it appears and moves without a reload.
        site = make_site(tmp_path / "site", "on the page", extra_files=1500)
        deployment_id = (await upload(http, pack(site), project)).json()["id"]
        seen: list[tuple[str, str]] = []
        async with asyncio.timeout(120):
            while not seen or seen[-1][0] != "active":
                shown = await progress_of(page, deployment_id)
                if shown is not None and (not seen or seen[-1] != shown):
                    seen.append(shown)
                await asyncio.sleep(0.05)
        assert seen[-1] == ("active", "100%")
        assert len(seen) >= 2, f"the bar never moved: {seen}"
        await page.screenshot(path=tmp_path / "deployments.png", full_page=True)
        assert_screenshot(tmp_path / "deployments.png", 12_000)

        await page.click(f'tr[data-id="{deployment_id}"] a[href^="/deployments/"]')
        await page.wait_for_url(f"{base}/deployments/{deployment_id}")
        await page.wait_for_selector("body[data-ended='true']")
        phases = await page.locator("#timeline tbody tr").evaluate_all(
            "rows => rows.map(r => [r.dataset.phase, r.cells[3].textContent])"
        )
        assert [p for p, _ in phases] == ["queued", *WORK_PHASES, "active"]
        assert all(duration for _, duration in phases[:-1]), phases
        log = await page.locator("#log").inner_text()
        assert "Phase transition: pulling_source (10%)" in log
        assert "Phase transition: active (100%)" in log
        link = await page.locator("#temporal").get_attribute("href")
        assert link == ui_url(settings, f"deploy-{deployment_id}")
        assert await page.locator("#status").inner_text() == "active"
        # Times carry their date, all in UTC.
        started = await page.locator("#timeline tbody tr").first.locator("td").nth(1).inner_text()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", started), started
        assert re.match(r"\d{4}-\d{2}-\d{2} ", await page.locator("#log .line").first.inner_text())
        # Once it has ended, the lanes end where it ended: they do not shrink towards now.
        reach = (
            "spans => Math.max(...spans.map("
            "s => parseFloat(s.style.marginLeft) + parseFloat(s.style.width)))"
        )
        before = await page.locator("#timeline .span").evaluate_all(reach)
        await asyncio.sleep(2.5)
        after = await page.locator("#timeline .span").evaluate_all(reach)
        assert before > 95 and after > 95, (before, after)

        # A deployment's page opened while it runs fills in as it goes.
        second = (await upload(http, pack(make_site(tmp_path / "v2", "v2", 1500)), project)).json()
        await page.goto(f"{base}/deployments/{second['id']}")
        await page.wait_for_selector("body[data-ended='true']", timeout=120_000)
        log = await page.locator("#log").inner_text()
        assert log.count("Phase transition") == 8
        assert await page.locator("#timeline tbody tr").count() == 8
        await page.screenshot(path=tmp_path / "deployment.png", full_page=True)
        assert_screenshot(tmp_path / "deployment.png", 40_000)

        # The page acts: redeploy the first deployment (a new deployment of the same upload).
        await page.goto(f"{base}/deployments/{deployment_id}")
        await page.wait_for_selector("body[data-ended='true']")
        assert await page.locator("#cancel").is_hidden()
        await page.click("#redeploy")
        await page.wait_for_url(
            re.compile(r".*/deployments/(?!" + deployment_id + ")[0-9a-f-]{36}$")
        )
        again = page.url.rsplit("/", 1)[1]
        await page.wait_for_selector("body[data-ended='true']", timeout=120_000)
        assert await page.locator("#status").inner_text() == "active"
        assert "on the page" in fetch(settings, project).text
        log_box = "box => box.scrollHeight - box.scrollTop - box.clientHeight"
        assert await page.locator("#log").evaluate(log_box) < 24, "the log box follows its end"

        # The project's view: its live URL, the release serving it, its history, and a
        # rollback to an earlier release.
        await page.goto(f"{base}/projects/{project}")
        await page.wait_for_selector("body[data-loaded='true']")
        live = f"http://{project}.localhost:{settings.http_port}/"
        assert await page.locator("#live").get_attribute("href") == live
        assert again[:8] in await page.locator("#facts").inner_text()
        rows = page.locator("#history tbody tr")
        assert await rows.count() == 3
        assert await page.locator(f'tr[data-id="{again}"] button').count() == 0
        await page.click(f'tr[data-id="{second["id"]}"] button.rollback')
        await page.wait_for_url(re.compile(r".*/deployments/[0-9a-f-]{36}$"))
        await page.wait_for_selector("body[data-ended='true']", timeout=120_000)
        assert await page.locator("#status").inner_text() == "active"
        assert "v2" in fetch(settings, project).text

        # An unknown id: no bar, no timeline, no link to a workflow that does not exist.
        await page.goto(f"{base}/deployments/{uuid.uuid4()}")
        await page.wait_for_selector("#title:text('is recorded')")
        assert await page.locator("#temporal").is_hidden()
        assert await page.locator("#fill").is_hidden()
        await page.goto(f"{base}/projects/never-deployed-{project}")
        await page.wait_for_selector("body[data-missing='true']")
    assert errors == [], errors


async def test_docs_render_every_operation_from_slipway_alone(
    http_app: FastAPI, browser: Browser, tmp_path: Path
) -> None:
    requested: list[str] = []
    errors: list[str] = []
    async with serving(http_app) as base:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda err: errors.append(str(err)))

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"{message.text} {message.location}")

        page.on("console", console)
        refused = await page.goto(f"{base}/docs")
        assert refused is not None and refused.status == 401, "no session, no docs"
        await page.goto(f"{base}/?token={TOKEN}")
        errors.clear()  # The 401 above, and the list page's own favicon request.
        await page.goto(f"{base}/docs")
        operation = page.locator(".opblock[id$='-createDeployment']")
        await operation.wait_for(timeout=30_000)
        assert "/api/deployments" in await operation.inner_text()
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            document = (await http.get("/openapi.json")).json()
        expected = {
            entry["operationId"] for path in document["paths"].values() for entry in path.values()
        }
        shown = await page.eval_on_selector_all(
            ".opblock[id^='operations-']", "blocks => blocks.map(block => block.id)"
        )
        assert {block.rsplit("-", 1)[1] for block in shown} == expected
        await page.screenshot(path=tmp_path / "docs.png", full_page=True)
        assert_screenshot(tmp_path / "docs.png", 40_000)
        assert errors == [], errors

        # "Try it out" acts with the session: an action carries its CSRF token.
        cancel = await page.evaluate(
            """async (path) => {
                const request = ui.getConfigs().requestInterceptor(
                    {url: path, method: "POST", headers: {}});
                const answer = await fetch(request.url,
                    {method: request.method, headers: request.headers});
                return answer.status;
            }""",
            f"/api/deployments/{uuid.uuid4()}/cancel",
        )
        assert cancel == 404, "allowed, and the deployment is unknown"
    outside = [url for url in requested if not url.startswith(f"{base}/")]
    assert outside == [], "the docs page asks only Slipway"
