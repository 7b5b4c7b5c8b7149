"""GET /metrics: the API's Prometheus metrics, behind the same token as every other endpoint
(Prometheus sends it with `authorization: {credentials_file: ...}`); and the middleware that
counts requests by route template, never by the path itself (ids stay out of the labels)."""

import asyncio
import time

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipway import metrics
from starter.http.auth import require_token

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""The route label of a request no route took (a 404 for any path, one label for all)."""

router = APIRouter(dependencies=[Depends(require_token)], include_in_schema=False)


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    """Every metric of this process in Prometheus's text format (the in-progress gauge asks
    the database, so it is read off the event loop)."""
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_of(scope: Scope) -> str:
    """The template of the route that took the request (`/api/deployments/{deployment_id}`)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """Counts each HTTP request by method, route template and status, and times it until
    its response starts (a stream's lifetime is not its latency)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "other"
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                metrics.api_latency.labels(method, route_of(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics.api_requests.labels(method, route_of(scope), str(status)).inc()
