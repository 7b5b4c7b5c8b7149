"""/api/projects/{name}/env: a project's environment variables listed (values masked),
changed and imported from a `.env` file, each change a new version, each with `redeploy` to
start a deployment with it; calls of `starter.project_env`.

A name that is not a POSIX name is refused by the schema; one of Slipway's own (PORT, HOST),
a variable to unset that is not set, a `.env` line that cannot be read (named by its number)
or an environment past the server's limits is 422 `env: why`.
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import Field

from slipway.environment import EnvError
from starter import project_env
from starter.http.auth import require_token
from starter.http.errors import COMMON, PROBLEM
from starter.http.fields import Env, EnvName, ProjectName
from starter.http.schemas import ApiModel
from starter.http.services import Shared

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["env"]
)

Name = Annotated[ProjectName, PathParam(description="Project name.")]
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {**PROBLEM, "description": "A variable cannot be set or unset as asked."}
}


@contextmanager
def refused_as_env() -> Iterator[None]:
    """A change that cannot be made: 422 `env: why`."""
    try:
        yield
    except EnvError as err:
        raise HTTPException(422, f"env: {err}") from None


class EnvRequest(ApiModel):
    """Variables to set and to remove, as one new version."""

    set: Env = Field(default_factory=dict, description="NAME → value; sealed on arrival.")
    unset: list[EnvName] = Field(default_factory=list, max_length=1000)
    redeploy: bool = Field(
        default=False, strict=True, description="Start a deployment with the new version."
    )


class DotenvRequest(ApiModel):
    """A `.env` file's text: every variable it names set, as one new version."""

    dotenv: str = Field(max_length=4 * 1024 * 1024, description="The file's text.")
    redeploy: bool = Field(
        default=False, strict=True, description="Start a deployment with the new version."
    )


@router.get("/projects/{name}/env")
async def env_list(name: Name, services: Shared) -> project_env.EnvListing:
    """The project's current version and its variables, values masked."""
    return await asyncio.to_thread(project_env.listing, services.engine, services.settings, name)


@router.patch("/projects/{name}/env", responses=REFUSED)
async def env_change(name: Name, body: EnvRequest, services: Shared) -> project_env.EnvChange:
    """Set and remove variables as one new version; with `redeploy`, start a deployment
    with it (else the next deployment uses it)."""
    with refused_as_env():
        version = await asyncio.to_thread(
            project_env.change, services.engine, services.settings, name, body.set, body.unset
        )
    return await project_env.applied(
        services.temporal, services.settings, services.engine, version, body.redeploy
    )


@router.post("/projects/{name}/env/import", responses=REFUSED)
async def env_import(name: Name, body: DotenvRequest, services: Shared) -> project_env.EnvChange:
    """Set every variable of a `.env` file as one new version (the others stay)."""
    with refused_as_env():
        version = await asyncio.to_thread(
            project_env.import_dotenv, services.engine, services.settings, name, body.dotenv
        )
    return await project_env.applied(
        services.temporal, services.settings, services.engine, version, body.redeploy
    )
