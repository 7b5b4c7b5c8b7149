"""The deployments page: plain HTML and a little JavaScript fed by the API and its event
streams. Its link carries the token once (`/?token=...`); the page trades it for a read-only
session cookie (see `auth`) and drops it from the address."""

import uuid
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse

from starter.http.auth import in_session, matches, start_session
from starter.http.fields import ProjectName
from starter.http.services import Services, Shared

STATIC = resources.files("starter.http") / "static"

ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}
"""The files under /static, with their types."""

router = APIRouter(include_in_schema=False)


def _refused() -> Response:
    return PlainTextResponse(
        "401 unauthorized: open the link `slipway api` printed; it carries the token.",
        status_code=401,
    )


def _page(request: Request, services: Services, offered: str | None, name: str) -> Response:
    """The page, once the request has a session; the link's token starts one, and the
    address loses the token."""
    if offered is not None:
        if not matches(services, offered):
            return _refused()
        redirect = RedirectResponse(request.url.path, status_code=303)
        start_session(redirect, request, services)
        return redirect
    if not in_session(request, services):
        return _refused()
    return HTMLResponse((STATIC / name).read_text())


Token = Annotated[str | None, Query(alias="token")]


@router.get("/")
def index_page(request: Request, services: Shared, token: Token = None) -> Response:
    """Recent deployments with live progress bars."""
    return _page(request, services, token, "index.html")


@router.get("/deployments/{deployment_id}")
def deployment_page(
    deployment_id: uuid.UUID, request: Request, services: Shared, token: Token = None
) -> Response:
    """One deployment: its progress, phase timeline, log and Temporal UI link."""
    return _page(request, services, token, "deployment.html")


@router.get("/projects/{name}")
def project_page(
    name: ProjectName, request: Request, services: Shared, token: Token = None
) -> Response:
    """One project: its live URL, the release serving it, its health, domains and history,
    with a rollback to each earlier release."""
    return _page(request, services, token, "project.html")


@router.get("/static/{name}")
def asset(name: str, request: Request, services: Shared) -> Response:
    """The page's script and style."""
    if not in_session(request, services):
        return _refused()
    if name not in ASSETS:
        return PlainTextResponse("404 not found", status_code=404)
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name])
