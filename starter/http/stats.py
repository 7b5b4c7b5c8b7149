"""/api/analytics: which phases take longest and where deployments fail."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from slipway import analytics
from starter.http.auth import require_token
from starter.http.errors import COMMON
from starter.http.services import Shared
from starter.http.views import DURATION, duration

router = APIRouter(
    prefix="/api/analytics",
    dependencies=[Depends(require_token)],
    responses=COMMON,
    tags=["analytics"],
)


@router.get("/phases")
def phase_analytics(
    services: Shared,
    since: Annotated[
        str,
        Query(pattern=DURATION, description="The window: a number and s, m, h or d, e.g. 7d."),
    ] = "7d",
) -> analytics.Stats:
    """Per phase: finished runs, p50/p95/max duration, failures and cancellations; per day:
    deployments and their success rate; and the phases deployments fail in most."""
    return analytics.stats(services.engine, duration(since))
