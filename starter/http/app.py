"""The FastAPI app and `slipway api`'s server."""

import contextlib
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import Depends, FastAPI
from temporalio.client import Client

from slipway.database import engine_for
from slipway.settings import Settings
from starter.http import (
    applogs,
    content,
    deployments,
    domains,
    errors,
    events,
    hooks,
    lifecycle,
    page,
    redaction,
    sources,
    stats,
)
from starter.http.auth import require_token
from starter.http.config import ApiSettings, resolve_token
from starter.http.limits import BodyLimit
from starter.http.schemas import Health
from starter.http.services import Services


def create_app(
    settings: Settings,
    api: ApiSettings,
    *,
    client: Client | None = None,
    engine: sa.Engine | None = None,
) -> FastAPI:
    """The API and the page for one server's settings; without a client, Temporal is
    connected on the first request that needs it."""
    app = FastAPI(
        title="Slipway",
        summary="Durable deployments on Temporal.",
        version="0.1.0",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodyLimit,
        limit=api.max_upload_bytes + deployments.UPLOAD_SLACK,
        upload_limit=api.max_upload_bytes,
    )
    app.state.services = Services(
        settings=settings,
        api=api,
        token=resolve_token(settings, api),
        engine=engine or engine_for(settings.sqlalchemy_url),
        client=client,
    )
    errors.install(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> Health:
        """The process answers; needs no token."""
        return Health()

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict[str, Any]:
        """The OpenAPI document, behind the token like everything but /healthz, with this
        server's limits on uploads."""
        return content.state_limits(app.openapi(), settings.unpack_limits)

    # Content first: its POST /api/deployments takes the requests whose body is JSON, the
    # archive upload's every other.
    for router in (
        content.router,
        deployments.router,
        events.router,
        stats.router,
        hooks.router,
        applogs.router,
        sources.router,
        domains.router,
        lifecycle.router,
        page.router,
    ):
        app.include_router(router)
    return app


def server_config(app: FastAPI, api: ApiSettings) -> uvicorn.Config:
    """How `slipway api` runs the app: uvicorn on the configured address, logging each request
    with any `?token=` masked."""
    config = uvicorn.Config(
        app, host=api.host, port=api.port, log_level="info", timeout_graceful_shutdown=2
    )
    redaction.install()
    return config


def serve(settings: Settings, api: ApiSettings) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn handles both, then raises the signal again: a
    Ctrl-C ends it quietly, as `uvicorn.run` does)."""
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(server_config(create_app(settings, api), api)).run()
