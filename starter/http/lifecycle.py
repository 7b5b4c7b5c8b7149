"""/api/projects/{name}/stop, …/start, …/restart and DELETE /api/projects/{name}: a project's
lifecycle, answered once the action is done (a delete may first wait for the deployments it
cancels)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam

from slipway.lifecycle import ProjectNotFoundError
from slipway.models import LifecycleAction, LifecycleResult
from starter import lifecycle
from starter.http.auth import require_token
from starter.http.errors import COMMON, PROBLEM
from starter.http.fields import ProjectName
from starter.http.services import Services, Shared

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["projects"]
)

Name = Annotated[ProjectName, PathParam(description="Project name.")]
REFUSED: dict[int | str, dict[str, Any]] = {
    404: {**PROBLEM, "description": "No such project."},
    409: {
        **PROBLEM,
        "description": "Not now: a deployment is queued or under way (but for a delete with "
        "cancel), nothing is deployed on the project's server yet, or no worker took it up.",
    },
}


async def _change(
    services: Services, name: str, action: LifecycleAction, cancel: bool = False
) -> LifecycleResult:
    try:
        return await lifecycle.change(
            await services.temporal(),
            services.settings,
            services.engine,
            name,
            action,
            cancel=cancel,
        )
    except ProjectNotFoundError as err:
        raise HTTPException(404, str(err)) from None
    except lifecycle.LifecycleError as err:
        raise HTTPException(409, str(err)) from None


@router.post("/projects/{name}/stop", responses=REFUSED)
async def stop_project(name: Name, services: Shared) -> LifecycleResult:
    """Stop the project: its route answers 503 (`X-Slipway-State: stopped`), an app's
    container stops, and the monitor leaves it alone until it starts again."""
    return await _change(services, name, LifecycleAction.STOP)


@router.post("/projects/{name}/start", responses=REFUSED)
async def start_project(name: Name, services: Shared) -> LifecycleResult:
    """Start a stopped project: an app's container proven healthy, then routed again."""
    return await _change(services, name, LifecycleAction.START)


@router.post("/projects/{name}/restart", responses=REFUSED)
async def restart_project(name: Name, services: Shared) -> LifecycleResult:
    """Restart the project without a failed request: an app's new container is proven
    healthy before the old one goes; a static site's route is rendered again."""
    return await _change(services, name, LifecycleAction.RESTART)


@router.delete("/projects/{name}", responses=REFUSED)
async def delete_project(
    name: Name,
    services: Shared,
    cancel: Annotated[
        bool, Query(description="Cancel the deployments queued or under way, then delete.")
    ] = False,
) -> LifecycleResult:
    """Delete the project and everything of it: routes, containers, images, releases,
    uploads, git mirror and every row (deployments, logs, domains, alerts, history)."""
    return await _change(services, name, LifecycleAction.DELETE, cancel)
