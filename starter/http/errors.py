"""Errors as one sentence a person can act on, under the status that says whose move it is."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route
from temporalio.service import RPCError

from slipway.environment import EnvError
from slipway.names import InvalidNameError
from slipway.project_sources import ProjectError
from starter.api import DeploymentError, KeyClashError
from starter.http.schemas import Problem
from starter.http.services import UnavailableError
from starter.uploads import UploadError

PROBLEM: dict[str, Any] = {"model": Problem}

COMMON: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No token, or not the right one."},
    422: {**PROBLEM, "description": "The request cannot be carried out as written."},
    503: {**PROBLEM, "description": "PostgreSQL or Temporal does not answer."},
}
"""Responses every authenticated endpoint may give."""

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {**PROBLEM, "description": "No such deployment is recorded."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {**PROBLEM, "description": "The deployment's state does not allow it."}
}

NAME_CLASH: dict[int | str, dict[str, Any]] = {
    409: {
        **PROBLEM,
        "description": "The name would make one project another's: a new project named with "
        "`--`, a preview over a project of its own, or a preview of a preview.",
    }
}


def _where(loc: tuple[int | str, ...]) -> str:
    """`('body', 'project')` → `project`: the field a person fills in."""
    named = [str(part) for part in loc[1:]] or [str(part) for part in loc]
    return ".".join(named)


def validation_message(err: RequestValidationError) -> str:
    """Every problem of a request, as `field: what is wrong` sentences."""
    parts = []
    for error in err.errors():
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{_where(tuple(error.get('loc', ())))}: {message}")
    return "; ".join(parts) or "the request is invalid"


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes, for a 405's Allow header: Starlette names only
    those of the first route at the path, and /api/deployments has two."""
    routes: list[BaseRoute] = request.app.routes
    methods = {
        method
        for route in routes
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE
        for method in route.methods or ()
    }
    return ", ".join(sorted(methods))


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status)


def install(app: FastAPI) -> None:
    """Map the core's refusals and outages to statuses."""

    async def invalid_request(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        return _problem(422, validation_message(err))

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, HTTPException)
        if err.status_code == 400:  # FastAPI's answer to a body it cannot parse
            return _problem(422, "body: cannot be parsed; send JSON, or multipart form data")
        response = await http_exception_handler(request, err)
        if err.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    async def invalid_input(_: Request, err: Exception) -> JSONResponse:
        return _problem(422, str(err))

    async def key_clash(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, KeyClashError)
        return _problem(
            422,
            f"Idempotency-Key already started deployment {err.deployment_id} of another "
            "project; use a new key for this one",
        )

    async def conflict(_: Request, err: Exception) -> JSONResponse:
        return _problem(409, str(err))

    async def unavailable(_: Request, err: Exception) -> JSONResponse:
        return _problem(503, str(err))

    async def database_down(_: Request, err: Exception) -> JSONResponse:
        return _problem(503, "PostgreSQL does not answer; try again shortly")

    async def temporal_refused(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RPCError)
        return _problem(503, f"Temporal refused the request: {err.message}")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(InvalidNameError, invalid_input)
    app.add_exception_handler(UploadError, invalid_input)
    app.add_exception_handler(ProjectError, invalid_input)
    app.add_exception_handler(EnvError, invalid_input)
    app.add_exception_handler(DeploymentError, conflict)
    app.add_exception_handler(KeyClashError, key_clash)
    app.add_exception_handler(UnavailableError, unavailable)
    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(RPCError, temporal_refused)
