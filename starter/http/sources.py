"""/api/projects/{name}/source and /api/projects/{name}/deployments: where a project's source
comes from (a git repository and branch, its credentials and webhook secret sealed at once
and never answered back), and a deployment from it."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi import Path as PathParam
from pydantic import Field

from slipway.models import GitSource
from slipway.project_sources import ProjectError
from starter import api, projects
from starter.http.auth import require_token
from starter.http.deployments import IdempotencyKey, accepted, deployed_to, keyed
from starter.http.errors import COMMON, NAME_CLASH, PROBLEM
from starter.http.fields import Commit, Env, PreviewName, ProjectName
from starter.http.schemas import Accepted, ApiModel
from starter.http.services import Shared

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["projects"]
)

Name = Annotated[ProjectName, PathParam(description="Project name.")]
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {**PROBLEM, "description": "The repository or a setting cannot be used."}
}


class SourceSet(ApiModel):
    """The settings as kept, and the webhook secret when one was generated (shown once)."""

    source: projects.SourceView
    generated_webhook_secret: str | None = None


class GitDeployment(ApiModel):
    """A deployment from a repository (else the project's own, at its branch)."""

    git: GitSource | None = None
    commit: Commit | None = Field(default=None, description="Source commit, recorded.")
    env: Env = Field(default_factory=dict)
    preview: PreviewName | None = Field(
        default=None,
        description="Deploy the project's preview of this name instead, at "
        "<preview>--<project>; production is not touched.",
    )


@contextmanager
def refused_as_source() -> Iterator[None]:
    """A repository git cannot fetch, or a setting that cannot be used: 422 `source: why`
    (the rules a schema cannot state: what git accepts, what the project has set before)."""
    try:
        yield
    except ProjectError as err:
        raise HTTPException(422, f"source: {err}") from None


@router.get("/projects/{name}/source")
def project_source(name: Name, services: Shared) -> projects.SourceView:
    """The project's repository and branch; secrets only as whether they are set."""
    return projects.show(services.engine, name)


@router.put("/projects/{name}/source", responses=REFUSED)
def set_project_source(name: Name, body: projects.SourceSettings, services: Shared) -> SourceSet:
    """Set the project's repository, branch, credentials, webhook secret and notification
    webhook; a webhook secret is generated when the project has none (answered once)."""
    with refused_as_source():
        generated = projects.apply(services.engine, services.settings, name, body)
    return SourceSet(
        source=projects.show(services.engine, name), generated_webhook_secret=generated
    )


class PreviewsSetting(ApiModel):
    """Whether pushes to other branches than the production one deploy previews."""

    enabled: bool = Field(
        strict=True, description="On: a push to another branch deploys its preview."
    )


@router.put("/projects/{name}/previews")
def set_project_previews(
    name: Name, body: PreviewsSetting, services: Shared
) -> projects.SourceView:
    """Turn the project's previews on or off; previews deployed already stay until their
    branch is deleted or they expire."""
    projects.set_previews(services.engine, services.settings, name, body.enabled)
    return projects.show(services.engine, name)


@router.post("/projects/{name}/deployments", status_code=202, responses=REFUSED | NAME_CLASH)
async def deploy_from_git(
    name: Name,
    body: GitDeployment,
    response: Response,
    services: Shared,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Deploy from a repository: the one given, else the project's at its branch; with a
    `preview` name, to that preview of the project."""
    deployment_id, earlier = await keyed(services, idempotency_key, deployed_to(name, body.preview))
    if earlier is not None:
        return accepted(response, earlier, "already started with this Idempotency-Key")
    with refused_as_source():
        await api.start_deployment(
            await services.temporal(),
            services.settings,
            None,
            name,
            git=body.git,
            source_commit=body.commit,
            deployment_id=deployment_id,
            engine=services.engine,
            env=body.env,
            preview=body.preview,
        )
    return accepted(response, deployment_id, "queued")
