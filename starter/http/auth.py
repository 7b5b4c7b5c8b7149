"""The bearer token every endpoint but /healthz requires.

Scripts send `Authorization: Bearer <token>`. A browser cannot put a header on a page load or
an EventSource, so the page's link carries the token once and trades it for an HttpOnly,
SameSite=Strict cookie, which is honoured for reads only: nothing changes on a cookie alone.
"""

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from starter.http.services import Services, Shared

COOKIE = "slipway_token"
READS = frozenset({"GET", "HEAD"})

bearer = HTTPBearer(
    auto_error=False,
    description="SLIPWAY_API_TOKEN, or the token `slipway api` keeps in <home>/api.token.",
)


def unauthorized() -> HTTPException:
    """The same answer for a missing and a wrong token: it tells nothing about either."""
    return HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})


def matches(services: Services, offered: str | None) -> bool:
    """True if `offered` is the token, compared in constant time."""
    return offered is not None and secrets.compare_digest(offered.encode(), services.token.encode())


def offered_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The bearer token, else on a read the page's cookie."""
    if credentials is not None:
        return credentials.credentials
    return request.cookies.get(COOKIE) if request.method in READS else None


def require_token(
    request: Request,
    services: Shared,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse the request with 401 unless it carries the token."""
    if not matches(services, offered_token(request, credentials)):
        raise unauthorized()
