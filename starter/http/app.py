"""The FastAPI app and `slipway api`'s server."""

import contextlib
import logging
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic.alias_generators import to_camel
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG

from slipway import logs, tracing
from slipway.database import engine_for
from slipway.heap import freeze_startup
from slipway.in_progress_metric import count_in_progress_from
from slipway.settings import Settings
from starter.http import (
    applogs,
    content,
    deployments,
    docs,
    domains,
    env,
    errors,
    events,
    hooks,
    lifecycle,
    metrics,
    page,
    previews,
    redaction,
    sources,
    stats,
)
from starter.http.auth import require_token
from starter.http.config import ApiSettings, resolve_token
from starter.http.limits import BodyLimit
from starter.http.schemas import Health
from starter.http.services import Services


def operation_id(route: APIRoute) -> str:
    """An operation's id as a client generator names its method: the endpoint's function
    name in camel case (`createDeployment`), not FastAPI's name, path and method."""
    return to_camel(route.name)


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
        generate_unique_id_function=operation_id,
    )
    app.add_middleware(
        BodyLimit,
        limit=api.max_upload_bytes + deployments.UPLOAD_SLACK,
        upload_limit=api.max_upload_bytes,
    )
    app.add_middleware(metrics.RequestMetrics)
    engine = engine or engine_for(settings.sqlalchemy_url)
    count_in_progress_from(engine)
    app.state.services = Services(
        settings=settings,
        api=api,
        token=resolve_token(settings, api),
        engine=engine,
        client=client,
    )
    errors.install(app)
    traced = tracing.provider()
    if traced is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=traced, excluded_urls="/healthz,/metrics"
        )

    @app.get("/healthz", tags=["health"])
    def healthz() -> Health:
        """The process answers; needs no token."""
        return Health()

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict[str, Any]:
        """The OpenAPI document, behind the token like everything but /healthz, with this
        server's limits on uploads and on a page of stuck deployments."""
        document = content.state_limits(app.openapi(), settings.unpack_limits)
        return deployments.state_stuck_limits(document, settings)

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
        previews.router,
        env.router,
        metrics.router,
        lifecycle.router,
        page.router,
        docs.router,
    ):
        app.include_router(router)
    return app


def server_config(app: FastAPI, api: ApiSettings) -> uvicorn.Config:
    """How `slipway api` runs the app: uvicorn on the configured address, logging each request
    with any `?token=` masked."""
    settings: Settings = app.state.services.settings
    logs.configure(settings.log_format)
    # JSON: uvicorn's loggers (request lines too) go through the root logger's JSON lines,
    # whatever an earlier uvicorn in this process made of them.
    log_config = None if settings.log_format == "json" else LOGGING_CONFIG
    if log_config is None:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    config = uvicorn.Config(
        app,
        host=api.host,
        port=api.port,
        log_level="info",
        log_config=log_config,
        timeout_graceful_shutdown=2,
    )
    redaction.install()
    return config


def serve(settings: Settings, api: ApiSettings) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn handles both, then raises the signal again: a
    Ctrl-C ends it quietly, as `uvicorn.run` does)."""
    tracing.start("slipway-api")
    server = uvicorn.Server(server_config(create_app(settings, api), api))
    freeze_startup()
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
