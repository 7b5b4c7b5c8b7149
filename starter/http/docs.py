"""`/docs`: Swagger UI for the API, served whole by this server.

Swagger UI's script and style come from the `fastapi-offline` package, not a CDN, so the page
loads on a machine with no way out and sends nothing to another host. It is for the same
people as `/openapi.json`: the bearer token or the page's session, and its assets likewise.
"""

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from starter.http.auth import require_token

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
"""Swagger UI's files that the page loads, with their types."""

OWN_ASSETS = {"docs.js": "text/javascript"}
"""Slipway's own start-up script for Swagger UI."""

SECURITY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""The browser loads and connects only to this server; Swagger UI sets inline styles."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Slipway API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])


def _swagger_ui() -> Traversable:
    """The package's folder of Swagger UI files, looked up when first asked for."""
    return resources.files("fastapi_offline") / "static"


def _own() -> Traversable:
    return resources.files("starter.http") / "static"


@router.get("/docs")
def docs_page() -> Response:
    """Swagger UI over this server's `/openapi.json`."""
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": SECURITY})


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """One of the files the docs page loads; any other name is not found."""
    if name in ASSETS:
        return Response((_swagger_ui() / name).read_bytes(), media_type=ASSETS[name])
    if name in OWN_ASSETS:
        return Response((_own() / name).read_bytes(), media_type=OWN_ASSETS[name])
    return PlainTextResponse("404 not found", status_code=404)
