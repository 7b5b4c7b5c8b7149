"""Push webhooks from GitHub, GitLab and Gitea/Forgejo: a push to the project's branch deploys
the commit pushed; with previews on for the project, a push to any other branch deploys that
branch's preview, and deleting the branch removes it. No bearer token: each request is
authenticated by the project's webhook secret (an HMAC of the body, or GitLab's token),
compared in constant time. The same delivery twice starts one deployment."""

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway.models import GitSource
from slipway.names import preview_name_of
from slipway.project_sources import source_of
from starter import api
from starter.http.deployments import ProjectName
from starter.http.errors import PROBLEM
from starter.http.services import Services, Shared
from starter.projects import webhook_secret

HOOKS = uuid.UUID("0d8c7c9e-5c1e-4f2e-9d55-6b7d1b7a41c2")
"""Namespace of the deployment ids derived from a push's delivery id."""

router = APIRouter(prefix="/api/hooks", tags=["webhooks"])


class HookAnswer(BaseModel):
    """What a push did: the deployment it queued, or why it was ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: str | None = Field(default=None, description="The deployment the push queued.")
    ignored: str | None = Field(default=None, description="Why nothing was deployed.")
    preview: str | None = Field(
        default=None, description="The preview the push deployed, or is removing."
    )
    removed: bool = Field(default=False, description="True if the push removes the preview.")


@dataclass(frozen=True)
class Push:
    """A webhook request read from any of the forges: what happened, and where."""

    event: str
    delivery: str
    ref: str
    after: str
    deleted: bool


def _unauthorized() -> HTTPException:
    return HTTPException(401, "unauthorized: the signature does not match the project's secret")


def _signed(request: Request, body: bytes, secret: str) -> bool:
    """True if the request proves it knows the secret, in whichever way its forge does."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    github = request.headers.get("X-Hub-Signature-256")
    if github is not None:
        return hmac.compare_digest(github.encode(), f"sha256={digest}".encode())
    gitea = request.headers.get("X-Gitea-Signature") or request.headers.get("X-Forgejo-Signature")
    if gitea is not None:
        return hmac.compare_digest(gitea.encode(), digest.encode())
    gitlab = request.headers.get("X-Gitlab-Token")
    if gitlab is not None:
        return hmac.compare_digest(gitlab.encode(), secret.encode())
    return False


def _push(request: Request, body: bytes) -> Push:
    """The push the body describes; a body that is not one is refused with 422."""
    headers = request.headers
    event = (
        headers.get("X-GitHub-Event")
        or headers.get("X-Gitea-Event")
        or headers.get("X-Forgejo-Event")
        or headers.get("X-Gitlab-Event")
        or ""
    )
    delivery = (
        headers.get("X-GitHub-Delivery")
        or headers.get("X-Gitea-Delivery")
        or headers.get("X-Forgejo-Delivery")
        or headers.get("X-Gitlab-Event-UUID")
        or headers.get("Idempotency-Key")
        or hashlib.sha256(body).hexdigest()
    )
    try:
        payload = json.loads(body)
    except ValueError:
        raise HTTPException(422, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise HTTPException(422, "the body is not a JSON object")
    return Push(
        event=event.lower().removesuffix(" hook"),
        delivery=delivery[:200],
        ref=str(payload.get("ref") or ""),
        after=str(payload.get("after") or payload.get("checkout_sha") or ""),
        deleted=bool(payload.get("deleted")),
    )


async def _body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (413 past it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                413, f"a webhook body is at most {limit} bytes (SLIPWAY_API_MAX_HOOK_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _deploy(
    services: Services, project: str, push: Push, url: str, preview: str | None = None
) -> str:
    deployment_id = str(uuid.uuid5(HOOKS, f"{project}:{push.delivery}"))
    return await api.start_deployment(
        await services.temporal(),
        services.settings,
        None,
        project,
        git=GitSource(url=url, ref=push.after),
        deployment_id=deployment_id,
        engine=services.engine,
        preview=preview,
    )


async def _preview(
    services: Services, project: str, push: Push, url: str, response: Response
) -> HookAnswer:
    """A push to a branch other than the production one: its preview deployed, or removed
    when the branch was deleted."""
    branch = push.ref.removeprefix("refs/heads/")
    name = preview_name_of(branch, project)
    if name is None:
        return HookAnswer(ignored=f"no preview name can be made of the branch {branch!r}")
    if push.deleted or not push.after.strip("0"):
        removing = await api.remove_preview(
            await services.temporal(),
            services.settings,
            services.engine,
            project,
            name,
            f"the branch {branch} was deleted",
        )
        if not removing:
            return HookAnswer(ignored=f"{branch} was deleted; it had no preview", preview=name)
        return HookAnswer(preview=name, removed=True)
    deployment_id = await _deploy(services, project, push, url, name)
    response.headers["Location"] = f"/api/deployments/{deployment_id}"
    return HookAnswer(id=deployment_id, preview=name)


@router.post(
    "/git/{project}",
    status_code=202,
    responses={
        401: {**PROBLEM, "description": "No signature, or not the project's."},
        413: {**PROBLEM, "description": "The body is over the webhook size limit."},
        422: {**PROBLEM, "description": "The body is not a push event's JSON."},
    },
)
async def git_push(
    project: Annotated[ProjectName, PathParam(description="Project name.")],
    request: Request,
    response: Response,
    services: Shared,
) -> HookAnswer:
    """A push event from GitHub (`X-Hub-Signature-256`), GitLab (`X-Gitlab-Token`) or
    Gitea/Forgejo (`X-Gitea-Signature`): a push to the project's branch deploys the commit
    pushed; with previews on, a push to another branch deploys its preview
    (`<branch>--<project>`) and one deleting it removes the preview; anything else is
    acknowledged and ignored."""
    body = await _body(request, services.api.max_hook_bytes)
    secret = await asyncio.to_thread(webhook_secret, services.engine, services.settings, project)
    if secret is None or not _signed(request, body, secret):
        raise _unauthorized()
    push = _push(request, body)
    source = await asyncio.to_thread(source_of, services.engine, project)
    if push.event != "push":
        return HookAnswer(ignored=f"not a push event ({push.event or 'none named'})")
    if not source.git_url:
        return HookAnswer(ignored="the project has no repository set")
    branch = source.branch or "main"
    if push.ref != f"refs/heads/{branch}":
        if source.previews and push.ref.startswith("refs/heads/"):
            return await _preview(services, project, push, source.git_url, response)
        return HookAnswer(ignored=f"a push to {push.ref or 'no ref'}, not to {branch}")
    if push.deleted or not push.after.strip("0"):
        return HookAnswer(ignored=f"{branch} was deleted")
    deployment_id = await _deploy(services, project, push, source.git_url)
    response.headers["Location"] = f"/api/deployments/{deployment_id}"
    return HookAnswer(id=deployment_id)
