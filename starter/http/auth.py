"""Who may call the API: scripts with the bearer token, the page with its session.

Scripts send `Authorization: Bearer <token>`. A browser cannot put a header on a page load or
an EventSource, so the page's link carries the token once and trades it for a session cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS). The session is not the token, nor does it
outlive its expiry: it is `<scope>.<expiry>.<nonce>.<signature>`, signed with HMAC-SHA256
under a key derived from the token (a new token ends every session).

A `read` session reads only. A `write` session (the default; `SLIPWAY_API_PAGE_ACTIONS=false`
makes every session `read`) also takes the page's actions (redeploy, rollback, cancel,
resume), each only with its CSRF token in the `X-CSRF-Token` header: an HMAC of the session
that the page reads from a cookie of its own, which another site can neither read nor make,
and from no other origin (`Origin`, when the browser sends it, must be this server).
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

READ, WRITE = "read", "write"
READS = frozenset({"GET", "HEAD"})
CSRF_COOKIE = "slipway_csrf"
CSRF_HEADER = "X-CSRF-Token"

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


def sign_session(token: str, expires: int, scope: str = READ) -> str:
    """A session of `scope` valid until `expires` (Unix seconds), with a nonce of its own."""
    payload = f"{scope}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_signature(token, payload).decode()}"


def session_scope(token: str, value: str | None, now: float) -> str | None:
    """The scope of `value` if it is a session signed under this token that has not
    expired, else None. The signature is checked first, in constant time: only a payload
    this server made is read."""
    if value is None:
        return None
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(token, payload)):
        return None
    scope, expires, _nonce = payload.split(".")
    return scope if scope in (READ, WRITE) and int(expires) > now else None


def valid_session(token: str, value: str | None, now: float) -> bool:
    """True if `value` is a live session signed under this token."""
    return session_scope(token, value, now) is not None


def csrf_token(token: str, session: str) -> str:
    """The CSRF token of a session: the page sends it with each action."""
    return _signature(token, f"csrf.{session}").decode()


def in_session(request: Request, services: Services) -> bool:
    """True if the request carries a live session cookie (whatever its method)."""
    return valid_session(services.token, request.cookies.get(COOKIE), time.time())


def start_session(response: Response, request: Request, services: Services) -> None:
    """Set a new session cookie on `response`, for `session_hours`: a write session with
    its CSRF cookie when the page may act, else a read session."""
    seconds = math.ceil(services.api.session_hours * 3600)
    scope = WRITE if services.api.page_actions else READ
    session = sign_session(services.token, int(time.time()) + seconds, scope)
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE, session, max_age=seconds, path="/", secure=secure, httponly=True, samesite="strict"
    )
    if scope == WRITE:
        response.set_cookie(
            CSRF_COOKIE,
            csrf_token(services.token, session),
            max_age=seconds,
            path="/",
            secure=secure,
            httponly=False,
            samesite="strict",
        )
    else:
        response.delete_cookie(CSRF_COOKIE, path="/", samesite="strict")
    response.delete_cookie(FORMER_COOKIE, path="/", httponly=True, samesite="strict")


def _same_origin(request: Request) -> bool:
    """False if the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def session_may_write(request: Request, services: Services) -> bool:
    """True if the request carries a live write session, its CSRF token, from this origin."""
    session = request.cookies.get(COOKIE)
    if session_scope(services.token, session, time.time()) != WRITE or session is None:
        return False
    offered = request.headers.get(CSRF_HEADER, "")
    expected = csrf_token(services.token, session)
    return hmac.compare_digest(offered.encode(), expected.encode()) and _same_origin(request)


def require_token(
    request: Request,
    services: Shared,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Refuse the request with 401 unless it carries the token, or it reads with a session."""
    if credentials is not None:
        allowed = matches(services, credentials.credentials)
    elif request.method in READS:
        allowed = in_session(request, services)
    else:
        allowed = session_may_write(request, services)
    if not allowed:
        raise unauthorized()
