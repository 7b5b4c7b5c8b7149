"""Who may call the API: scripts with the bearer token, the page with its read-only session.

Scripts send `Authorization: Bearer <token>`. A browser cannot put a header on a page load or
an EventSource, so the page's link carries the token once and trades it for a session cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS). The session is not the token, so a stolen
cookie cannot write, nor outlive its expiry: it is `read.<expiry>.<nonce>.<signature>`, signed
with HMAC-SHA256 under a key derived from the token (a new token ends every session), and it
is honoured for reads only.
"""

import hashlib
import hmac
import math
import secrets
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from starter.http.services import Services, Shared

COOKIE = "slipway_session"
FORMER_COOKIE = "slipway_token"
"""The cookie earlier versions set, which held the token itself: dropped when a session starts."""

SCOPE = "read"
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


def _signature(token: str, payload: str) -> bytes:
    key = hashlib.sha256(b"slipway-session\0" + token.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest().encode()


def sign_session(token: str, expires: int) -> str:
    """A session valid until `expires` (Unix seconds), with a nonce of its own."""
    payload = f"{SCOPE}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_signature(token, payload).decode()}"


def valid_session(token: str, value: str | None, now: float) -> bool:
    """True if `value` is a session signed under this token that has not expired. The
    signature is checked first, in constant time: only a payload this server made is read."""
    if value is None:
        return False
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(token, payload)):
        return False
    scope, expires, _nonce = payload.split(".")
    return scope == SCOPE and int(expires) > now


def in_session(request: Request, services: Services) -> bool:
    """True if the request carries a live session cookie (whatever its method)."""
    return valid_session(services.token, request.cookies.get(COOKIE), time.time())


def start_session(response: Response, request: Request, services: Services) -> None:
    """Set a new session cookie on `response`, for `session_hours`."""
    seconds = math.ceil(services.api.session_hours * 3600)
    response.set_cookie(
        COOKIE,
        sign_session(services.token, int(time.time()) + seconds),
        max_age=seconds,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(FORMER_COOKIE, path="/", httponly=True, samesite="strict")


def require_token(
    request: Request,
    services: Shared,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse the request with 401 unless it carries the token, or it reads with a session."""
    if credentials is not None:
        allowed = matches(services, credentials.credentials)
    else:
        allowed = request.method in READS and in_session(request, services)
    if not allowed:
        raise unauthorized()
