"""/api/deployments and /api/projects: start, read, cancel, resume and roll back, each a
call of `starter.api`."""

import asyncio
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
)
from fastapi import Path as PathParam

from slipway import analytics, monitoring, queries
from slipway.models import DeploymentView, LogEntry
from slipway.names import InvalidNameError, preview_site
from slipway.phases import Status
from slipway.project_health import ProjectSummary
from slipway.settings import Settings
from slipway.stuck import CURSOR, PageError, page_size, stuck_page
from starter import api
from starter.http.archive_form import ArchiveForm, form_schema
from starter.http.auth import require_token
from starter.http.errors import COMMON, CONFLICT, NAME_CLASH, NOT_FOUND, PROBLEM
from starter.http.fields import ID_PREFIX
from starter.http.fields import ProjectName as ProjectName  # where webhooks take it from
from starter.http.schemas import (
    Accepted,
    Deployment,
    RollbackRequest,
    Stuck,
    UploadDeployment,
)
from starter.http.services import Shared
from starter.http.views import DURATION, duration, present
from starter.uploads import ARCHIVE_SUFFIXES, UploadError

IDEMPOTENCY = uuid.UUID("e419569b-6e7c-4095-981e-ed14591fc19e")
"""Namespace of the deployment ids derived from Idempotency-Key headers."""

UPLOAD_SLACK = 64 * 1024
"""Bytes a multipart request carries beyond its file: boundaries, headers, the other fields."""

MAX_ROW_ID = 2**63 - 1
"""PostgreSQL's bigint: a larger `after` would be refused by the database, not by us."""

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["deployments"]
)


def recorded(deployment_id: uuid.UUID, services: Shared) -> DeploymentView:
    """The deployment the path names, or 404."""
    view = queries.get_deployment(services.engine, str(deployment_id))
    if view is None:
        raise HTTPException(404, f"no deployment {deployment_id} is recorded")
    return view


Recorded = Annotated[DeploymentView, Depends(recorded)]


def upload_name(filename: str | None) -> str:
    """The uploaded file's name made safe as a file name. It must name an archive: a request
    carries one file, so a directory arrives packed."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename or "").name)[-100:]
    if not name.endswith(ARCHIVE_SUFFIXES):
        raise UploadError(
            f"file: {filename!r} is not a {', '.join(ARCHIVE_SUFFIXES)} archive; "
            "pack the site or app as one"
        )
    return name


ARCHIVE_NAME = 'filename="[^"]*(?:{})"'.format("|".join(map(re.escape, ARCHIVE_SUFFIXES)))
"""What `upload_name` asks of the file part's Content-Disposition, as the schema states it."""

UPLOAD_ENCODING = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": form_schema(),
                "encoding": {
                    "file": {
                        "headers": {
                            "Content-Disposition": {
                                "description": "The file's name ends with one of "
                                f"{', '.join(ARCHIVE_SUFFIXES)}.",
                                "schema": {"type": "string", "pattern": ARCHIVE_NAME},
                            }
                        }
                    }
                },
            },
            "application/json": {
                "schema": UploadDeployment.model_json_schema(by_alias=True),
            },
        },
    }
}
"""The upload's body, read by `starter.http.archive_form` as it streams in rather than by
FastAPI (which would spool it to a temporary file first): its fields, and its rule on the
file's name, which OpenAPI places in the multipart encoding; and the other body the
operation takes, JSON naming an upload made through /api/uploads (served
by `starter.http.content`, which takes the requests whose body is JSON)."""

IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        description="The same key again starts no second deployment: it answers with the "
        "first one's id.",
    ),
]


def accepted(response: Response, deployment_id: str, message: str) -> Accepted:
    """A 202's body, with the deployment's address in Location."""
    response.headers["Location"] = f"/api/deployments/{deployment_id}"
    return Accepted(id=deployment_id, message=message)


async def keyed(services: Shared, key: str | None, project: str) -> tuple[str, str | None]:
    """The new deployment's id (derived from the Idempotency-Key when there is one), and
    the id of the deployment that key already started, if any; the same key for another
    project is refused."""
    deployment_id = str(uuid.uuid5(IDEMPOTENCY, key) if key else uuid.uuid4())
    if not key:
        return deployment_id, None
    earlier = await asyncio.to_thread(queries.get_deployment, services.engine, deployment_id)
    if earlier is not None and earlier.project != project:
        raise HTTPException(
            422,
            f"Idempotency-Key {key!r} already started deployment {earlier.id} "
            f"of {earlier.project}; use a new key for {project}",
        )
    return deployment_id, earlier.id if earlier is not None else None


def deployed_to(project: str, preview: str | None) -> str:
    """Where a deployment request goes: the project, or its preview `<preview>--<project>`;
    a preview name that does not fit beside the project's is refused with 422 `preview: `."""
    if preview is None:
        return project
    try:
        return preview_site(preview, project)
    except InvalidNameError as err:
        raise HTTPException(422, f"preview: {err}") from None


def environment(pairs: list[str]) -> dict[str, str]:
    """NAME=VALUE pairs as a mapping, a later name replacing an earlier one."""
    return dict(pair.split("=", 1) for pair in pairs)


@router.post(
    "/deployments",
    status_code=202,
    responses={
        404: {**PROBLEM, "description": "JSON body: no such upload is stored."},
        413: {**PROBLEM, "description": "The upload is over the size limit."},
        **NAME_CLASH,
    },
    openapi_extra=UPLOAD_ENCODING,
)
async def create_deployment(
    request: Request,
    response: Response,
    services: Shared,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Upload an archive and queue its deployment; its progress is at the returned id. Or,
    with a JSON body, deploy an upload made through /api/uploads and /api/blobs: only the
    contents the server lacked were sent."""
    settings = services.settings
    form = ArchiveForm(settings.layout, services.api.max_upload_bytes)
    try:
        await form.read(request)
        fields = form.checked()
        name = upload_name(form.filename)
        target = deployed_to(fields.project, fields.preview)
        deployment_id, earlier = await keyed(services, idempotency_key, target)
        if earlier is not None:
            return accepted(response, earlier, "already started with this Idempotency-Key")
        client = await services.temporal()
        await api.deploy_stored(
            client,
            settings,
            await form.keep(),
            fields.project,
            source=f"upload {name}",
            source_commit=fields.commit,
            deployment_id=deployment_id,
            engine=services.engine,
            env=environment(fields.env),
            preview=fields.preview,
        )
    finally:
        await form.discard()
    return accepted(response, deployment_id, "queued")


@router.get("/deployments")
def list_deployments(
    services: Shared,
    project: Annotated[ProjectName | None, Query(description="Only this project's.")] = None,
    status: Annotated[Status | None, Query(description="Only those in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    id_prefix: Annotated[
        str | None,
        Query(
            alias="idPrefix",
            pattern=ID_PREFIX,
            min_length=8,
            max_length=36,
            description="Only those whose id begins so: 8 or more of its first characters, "
            "lowercase, with its hyphens.",
        ),
    ] = None,
) -> list[Deployment]:
    """The newest deployments first."""
    found = queries.recent(services.engine, project, status, limit, id_prefix)
    return [present(services, view) for view in found]


@router.get("/projects", tags=["projects"])
def list_projects(services: Shared) -> list[ProjectSummary]:
    """Every project with its health as the monitor last saw it and the deployment serving
    it (the newest active one)."""
    return monitoring.project_summaries(services.engine)


NEXT_PAGE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'The next page, as `<...>; rel="next"`: this request with '
                "`after` set to the cursor that follows this page. Absent on the last page.",
                "schema": {"type": "string"},
            }
        }
    }
}


@router.get("/deployments/stuck", responses=NEXT_PAGE)
async def stuck_deployments(
    request: Request,
    response: Response,
    services: Shared,
    older_than: Annotated[
        str,
        Query(
            alias="olderThan",
            pattern=DURATION,
            description="How long in one phase counts as stuck: a number and s, m, h or d.",
        ),
    ] = "5m",
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="How many, at most, this page holds: by default SLIPWAY_STUCK_LIMIT, "
            "at most SLIPWAY_STUCK_MAX_LIMIT (more is refused with 422).",
        ),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            pattern=CURSOR,
            description="Where the page begins: the cursor the page before gave in its Link "
            "header.",
        ),
    ] = None,
) -> list[Stuck]:
    """Deployments queued or in progress whose phase has not moved for that long, the
    longest first, each classified against Temporal: slow, orphaned or no-worker. A page at
    a time: a Link header names the next one."""
    try:
        size = page_size(services.settings, limit)
    except PageError as err:
        raise HTTPException(422, str(err)) from None
    page = await stuck_page(services.engine, services.temporal, duration(older_than), size, after)
    if page.after is not None:
        following = request.url.include_query_params(after=page.after)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return [Stuck.of(found) for found in page.found]


def state_stuck_limits(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The OpenAPI document with this server's page sizes on the stuck listing's `limit`."""
    operation = document["paths"]["/api/deployments/stuck"]["get"]
    limit = next(param for param in operation["parameters"] if param["name"] == "limit")
    limit["schema"]["default"] = settings.stuck_limit
    for branch in limit["schema"]["anyOf"]:
        if branch.get("type") == "integer":
            branch["maximum"] = settings.stuck_max_limit
    return document


@router.get("/deployments/{deployment_id}", responses=NOT_FOUND)
def get_deployment(
    view: Recorded,
    services: Shared,
    stack: Annotated[
        bool,
        Query(description="Include a failure's stack (it names the server's paths)."),
    ] = False,
) -> Deployment:
    """Phase, progress, metadata, updatedAt and status; while it runs, an ETA."""
    return present(services, view, stack)


@router.get("/deployments/{deployment_id}/logs", responses=NOT_FOUND)
def deployment_logs(
    view: Recorded,
    services: Shared,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Only rows after this id.")] = 0,
) -> list[LogEntry]:
    """The deployment's log, oldest first: every phase transition, message and build line."""
    return queries.get_logs(services.engine, view.id, after)


@router.get("/deployments/{deployment_id}/timeline", responses=NOT_FOUND)
def deployment_timeline(view: Recorded, services: Shared) -> list[analytics.PhaseSpan]:
    """Each phase the deployment went through with its start, end and duration."""
    return analytics.timeline(services.engine, view.id)


@router.post("/deployments/{deployment_id}/cancel", status_code=202, responses=NOT_FOUND | CONFLICT)
async def cancel_deployment(view: Recorded, services: Shared, response: Response) -> Accepted:
    """Cancel at any phase; the previous release keeps serving."""
    message = await api.cancel(await services.temporal(), services.engine, view.id)
    return accepted(response, view.id, message)


@router.post("/deployments/{deployment_id}/resume", status_code=202, responses=NOT_FOUND | CONFLICT)
async def resume_deployment(view: Recorded, services: Shared, response: Response) -> Accepted:
    """Continue a failed, cancelled or orphaned deployment from its first unfinished phase."""
    client = await services.temporal()
    await api.resume(client, services.settings, services.engine, view.id)
    return accepted(response, view.id, "resuming")


@router.post(
    "/deployments/{deployment_id}/redeploy", status_code=202, responses=NOT_FOUND | CONFLICT
)
async def redeploy_deployment(view: Recorded, services: Shared, response: Response) -> Accepted:
    """Deploy what this deployment deployed again (the same upload and environment), as a
    new deployment of its project (its id is returned)."""
    client = await services.temporal()
    deployment_id = await api.redeploy_deployment(
        client, services.settings, services.engine, view.id
    )
    return accepted(response, deployment_id, f"redeploying {view.project}")


@router.post("/projects/{name}/rollback", status_code=202, responses=CONFLICT)
async def rollback_project(
    name: Annotated[ProjectName, PathParam(description="Project name.")],
    services: Shared,
    response: Response,
    body: RollbackRequest | None = None,
) -> Accepted:
    """Switch the project to a kept earlier release without rebuilding, as a deployment of
    its own (its id is returned)."""
    to = str(body.to) if body is not None and body.to is not None else None
    client = await services.temporal()
    deployment_id = await api.rollback(client, services.settings, services.engine, name, to)
    return accepted(response, deployment_id, f"rolling back {name}")
