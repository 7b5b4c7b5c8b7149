"""/api/previews and /api/projects/{name}/previews/…: a project's previews listed, one
promoted to production, one removed; each a call of `starter.api`. Deploying a preview is a
deployment with a `preview` name (`starter.http.deployments`, `content`, `sources`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi import Path as PathParam

from slipway.models import PreviewView
from slipway.names import InvalidNameError, preview_site
from starter import api
from starter.http.auth import require_token
from starter.http.deployments import accepted
from starter.http.errors import COMMON, CONFLICT, PROBLEM
from starter.http.fields import PreviewName, ProjectName
from starter.http.schemas import Accepted, ApiModel
from starter.http.services import Shared

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["previews"]
)

Name = Annotated[ProjectName, PathParam(description="Project name.")]
Preview = Annotated[PreviewName, PathParam(description="The preview's name.")]
REMOVED_THROUGH_API = "removed through the API"
"""The reason the project's history records for a removal asked of the API."""
NO_PREVIEW: dict[int | str, dict[str, Any]] = {
    404: {**PROBLEM, "description": "The project has no preview of that name."}
}


def _no_preview(name: str, preview: str) -> HTTPException:
    return HTTPException(404, f"{name} has no preview {preview}")


@router.get("/previews")
def list_all_previews(services: Shared) -> list[PreviewView]:
    """Every project's previews not removed: where each answers, what serves it, until when."""
    return api.list_previews(services.settings, services.engine, None)


@router.get("/projects/{name}/previews")
def list_project_previews(name: Name, services: Shared) -> list[PreviewView]:
    """The project's previews not removed: where each answers, what serves it, until when."""
    return api.list_previews(services.settings, services.engine, name)


@router.post(
    "/projects/{name}/previews/{preview}/promote",
    status_code=202,
    responses=NO_PREVIEW | CONFLICT,
)
async def promote_preview(
    name: Name, preview: Preview, services: Shared, response: Response
) -> Accepted:
    """Switch the project's production to the release its preview serves, without
    rebuilding, as a deployment of the project (its id is returned), like a rollback."""
    try:
        preview_site(preview, name)
    except InvalidNameError:
        raise _no_preview(name, preview) from None
    client = await services.temporal()
    try:
        deployment_id = await api.promote(client, services.settings, services.engine, name, preview)
    except api.PreviewNotFoundError as err:
        raise HTTPException(404, str(err)) from None
    return accepted(response, deployment_id, f"promoting preview {preview} of {name}")


class Removal(ApiModel):
    """A preview's removal, handed to its serializer."""

    project: str
    preview: str
    message: str


@router.delete("/projects/{name}/previews/{preview}", status_code=202, responses=NO_PREVIEW)
async def remove_preview(name: Name, preview: Preview, services: Shared) -> Removal:
    """Have the preview removed with everything it used (its route, containers, releases),
    after any deployment of it in progress; its deployments stay on record."""
    try:
        preview_site(preview, name)
    except InvalidNameError:
        raise _no_preview(name, preview) from None
    client = await services.temporal()
    if not await api.remove_preview(
        client, services.settings, services.engine, name, preview, REMOVED_THROUGH_API
    ):
        raise _no_preview(name, preview)
    return Removal(project=name, preview=preview, message="removal requested")
