"""/api/domains and /api/projects/{project}/domains: a project's custom domains added, removed
and listed with their certificates' state, each a call of `starter.domains`.

The schema states every rule of a name, in its ASCII form (a Unicode name is sent as its
`xn--` labels; the Python API and the CLI encode it). A name that is valid but taken (by
another project, or under Slipway's base domain) or past the project's limit is 409. A
certificate of the domain's own is given through the Python API (`starter.domains.add`):
whether a certificate fits its key and the name is no rule a schema can state.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi import Path as PathParam
from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from slipway.domain_names import DOMAIN_PATTERN, MAX_NAME
from slipway.domains import DomainConflictError, DomainNotFoundError, DomainView
from starter import domains
from starter.http.auth import require_token
from starter.http.errors import COMMON, PROBLEM
from starter.http.fields import ProjectName
from starter.http.schemas import ApiModel
from starter.http.services import Services, Shared

T = TypeVar("T")

_WWW_NAME = MAX_NAME - len("www.")

DomainName = Annotated[
    str,
    Field(
        min_length=4,
        max_length=MAX_NAME,
        pattern=DOMAIN_PATTERN,
        description="A domain name in its ASCII form (IDNA: Unicode labels as `xn--`).",
        examples=["example.com"],
    ),
]

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["domains"]
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**PROBLEM, "description": "No such project is recorded, or it has no such domain."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        **PROBLEM,
        "description": "Another project has the name (or its www. name), it is under "
        "Slipway's base domain, or the project has as many domains as it may.",
    }
}


class DomainRequest(ApiModel):
    """A domain for the project; its certificate comes from the ACME CA."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={
            "if": {"properties": {"redirectWww": {"const": True}}, "required": ["redirectWww"]},
            "then": {"properties": {"name": {"maxLength": _WWW_NAME}}},
        },
    )

    name: DomainName
    redirect_www: bool = Field(
        default=False,
        strict=True,
        description=f"Answer at www.<name> too, redirecting there; <name> is then at most "
        f"{_WWW_NAME} characters.",
    )

    @model_validator(mode="after")
    def _www_fits(self) -> "DomainRequest":
        if self.redirect_www and len(self.name) > _WWW_NAME:
            raise ValueError(
                f"name: with redirectWww, at most {_WWW_NAME} characters (www.<name> is a name)"
            )
        return self


async def _answer(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`, its refusals as the statuses they mean."""
    try:
        return await work()
    except DomainNotFoundError as err:
        raise HTTPException(404, str(err)) from None
    except DomainConflictError as err:
        raise HTTPException(409, str(err)) from None


Project = Annotated[ProjectName, PathParam(description="Project name.")]
Domain = Annotated[
    str,
    PathParam(
        min_length=4,
        max_length=MAX_NAME,
        pattern=DOMAIN_PATTERN,
        description="A domain of the project, in its ASCII form.",
    ),
]


def _location(project: str, name: str) -> str:
    return f"/api/projects/{project}/domains/{name}"


@router.get("/domains")
async def list_domains(services: Shared) -> list[DomainView]:
    """Every project's domains, each with its certificate's state."""
    return await asyncio.to_thread(domains.listed, services.engine)


@router.get("/projects/{project}/domains", responses=NOT_FOUND)
async def project_domains(project: Project, services: Shared) -> list[DomainView]:
    """The project's domains, each with its certificate's state: pending, issued (with when
    it expires), expired, or failed with the ACME CA's reason."""
    return await _answer(lambda: asyncio.to_thread(domains.listed, services.engine, project))


@router.get("/projects/{project}/domains/{domain}", responses=NOT_FOUND)
async def project_domain(project: Project, domain: Domain, services: Shared) -> DomainView:
    """One domain of the project."""
    return await _answer(lambda: asyncio.to_thread(domains.shown, services.engine, project, domain))


async def _add(services: Services, project: str, body: DomainRequest) -> tuple[DomainView, bool]:
    return await domains.add(
        await services.temporal(),
        services.engine,
        services.settings,
        project,
        body.name,
        redirect_www=body.redirect_www,
    )


@router.post(
    "/projects/{project}/domains",
    status_code=201,
    responses={
        200: {"model": DomainView, "description": "The project had it: it is served as asked."},
        201: {
            "description": "Added; the route is rendered again without a redeploy.",
            "headers": {"Location": {"schema": {"type": "string"}, "description": "Its URL."}},
        },
        **NOT_FOUND,
        **CONFLICT,
    },
)
async def add_domain(
    project: Project, body: DomainRequest, services: Shared, response: Response
) -> DomainView:
    """Have the project answer at a domain (and its www. name, redirecting): over HTTP at
    once, over HTTPS (its HTTP redirecting there) once its certificate is issued."""
    view, created = await _answer(lambda: _add(services, project, body))
    if created:
        response.headers["Location"] = _location(project, view.name)
    else:
        response.status_code = 200
    return view


@router.delete("/projects/{project}/domains/{domain}", responses=NOT_FOUND)
async def remove_domain(project: Project, domain: Domain, services: Shared) -> DomainView:
    """Stop the project answering at the domain; the route is rendered again without a
    redeploy."""

    async def remove() -> DomainView:
        client = await services.temporal()
        return await domains.remove(client, services.engine, services.settings, project, domain)

    return await _answer(remove)
