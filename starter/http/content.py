"""Content-addressed uploads: a client describes its tree (`POST /api/uploads`), sends only
the contents the server lacks (`PUT /api/blobs/{sha256}`), then deploys the upload
(`POST /api/deployments` with a JSON body). A redeploy with one file changed sends one file,
and describes its tree as the changes to the upload it made last
(`POST /api/uploads/{base}/changes`): one entry, not 10,000.

The manifest is checked whole before anything is written, by the rules pulling_source holds
it to again (`activities.adapters.content_manifest`), and stored in the upload store as an
upload of its own under the sha256 of its canonical form; each blob is verified against its
name while it streams in and written atomically (`activities.adapters.blobs`).
"""

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import Scope

from activities.adapters.blobs import (
    BlobError,
    BlobTooLargeError,
    BlobWriter,
    missing_blobs,
    put,
)
from activities.adapters.content_manifest import (
    HEAD,
    Item,
    ManifestError,
    canonical,
    check,
    file_mode,
    largest,
    parse,
)
from slipway.layout import Layout
from slipway.limits import UnpackLimits
from starter import api
from starter.http.auth import require_token
from starter.http.deployments import IdempotencyKey, accepted, deployed_to, keyed
from starter.http.errors import COMMON, PROBLEM
from starter.http.fields import DIGEST, entry_path
from starter.http.schemas import (
    Accepted,
    FileEntry,
    LinkEntry,
    ManifestEntry,
    UploadAnswer,
    UploadChanges,
    UploadDeployment,
    UploadRequest,
)
from starter.http.services import Services, Shared

FLUSH_BYTES = 1 << 20
"""Bytes of a blob gathered before they are written: one thread hop per MiB, not per chunk."""


class JsonBody(APIRoute):
    """A route that takes only requests whose body is JSON, so that another route at the
    same path and method (the multipart archive upload) takes every other request."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        media = Headers(scope=scope).get("content-type", "").partition(";")[0].strip().lower()
        if match is Match.FULL and media != "application/json":
            return Match.NONE, {}
        return match, child


router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=COMMON, tags=["uploads"]
)

MANIFEST_REFUSED = {**PROBLEM, "description": "The manifest breaks a rule; `manifest:` names it."}


def state_limits(document: dict[str, Any], limits: UnpackLimits) -> dict[str, Any]:
    """The OpenAPI document with this server's unpack limits on the manifest's fields, so
    that it states what the server holds an upload to; what no schema can state (the
    entries forming a tree, links staying inside it, the total) a `manifest:` 422 names."""
    schemas = document["components"]["schemas"]
    path = {"maxLength": limits.max_path_length, "pattern": entry_path(limits.max_depth)}
    for name in ("DirEntry", "FileEntry", "LinkEntry"):
        schemas[name]["properties"]["path"].update(path)
    largest_file = min(limits.max_file_bytes, limits.max_bytes)
    schemas["FileEntry"]["properties"]["size"]["maximum"] = largest_file
    schemas["LinkEntry"]["properties"]["target"]["maxLength"] = limits.max_path_length
    schemas["UploadRequest"]["properties"]["entries"]["maxItems"] = limits.max_files
    changes = schemas["UploadChanges"]["properties"]
    changes["entries"]["maxItems"] = changes["removed"]["maxItems"] = limits.max_files
    changes["removed"]["items"].update(path)
    return document


def _item(entry: ManifestEntry) -> Item:
    if isinstance(entry, FileEntry):
        return Item(entry.path, "file", entry.size, file_mode(entry.mode), entry.sha256)
    if isinstance(entry, LinkEntry):
        return Item(entry.path, "link", target=entry.target)
    return Item(entry.path, "dir")


def _refused(err: ManifestError) -> HTTPException:
    return HTTPException(422, f"manifest: {err}")


def _store_manifest(layout: Layout, data: bytes) -> str:
    """Keep the canonical manifest as an upload under its sha256 (written whole through a
    rename, or touched when it is there, so the upload retention counts from now)."""
    upload_id = hashlib.sha256(data).hexdigest()
    path = layout.upload(upload_id)
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)
        return upload_id
    layout.uploads.mkdir(parents=True, exist_ok=True)
    scratch = layout.uploads / f".incoming-{uuid.uuid4().hex}"
    try:
        scratch.write_bytes(data)
        scratch.replace(path)
    finally:
        scratch.unlink(missing_ok=True)
    return upload_id


def _taken(services: Services, items: list[Item]) -> UploadAnswer:
    """Store a manifest whose entries passed `check` and answer the contents it lacks (a
    content the store holds with another size than an entry gives refuses it). Its checked
    entries are kept for uploads described as changes to it; what it lacked, for its
    deployment."""
    settings = services.settings
    try:
        missing = missing_blobs(settings.layout.uploads, items)
    except ManifestError as err:
        raise _refused(err) from None
    upload_id = _store_manifest(settings.layout, canonical(items))
    wanted = set(missing)
    lacking = {i.sha256: (i.path, i.size) for i in items if i.kind == "file" and i.sha256 in wanted}
    services.described.remember(upload_id, lacking)
    services.manifests.keep(upload_id, tuple(items))
    return UploadAnswer(upload_id=upload_id, missing=missing)


@router.post("/uploads", responses={422: MANIFEST_REFUSED})
def create_upload(body: UploadRequest, services: Shared) -> UploadAnswer:
    """Describe a tree; the answer names the upload and the contents still to send. Nothing
    is written unless the whole manifest is valid."""
    items = [_item(entry) for entry in body.entries]
    try:
        check(items, services.settings.unpack_limits)
    except ManifestError as err:
        raise _refused(err) from None
    return _taken(services, items)


def _stored_items(layout: Layout, limits: UnpackLimits, upload_id: str) -> list[Item]:
    """The entries of a stored content manifest, checked whole."""
    try:
        with layout.upload(upload_id).open("rb") as handle:
            data = handle.read(largest(limits) + 1)
    except FileNotFoundError:
        data = b""
    if not data.startswith(HEAD):
        raise HTTPException(
            404, f"no content manifest {upload_id} is stored: POST it whole to /api/uploads"
        )
    if len(data) > largest(limits):
        raise ManifestError(f"upload {upload_id} is larger than any manifest within the limits")
    return parse(data, limits)


def _applied(before: Iterable[Item], body: UploadChanges, base: str) -> list[Item]:
    """The entries of `before` with the changes made: removed paths dropped (each must be
    there), then each new or changed entry put at its path (each path once)."""
    entries = {item.path: item for item in before}
    for path in body.removed:
        if entries.pop(path, None) is None:
            raise ManifestError(f"entry {path!r} is to be removed, but upload {base} has none")
    changed = [_item(entry) for entry in body.entries]
    if len({item.path for item in changed}) != len(changed):
        raise ManifestError("an entry appears twice among the changes")
    for item in changed:
        entries[item.path] = item
    return list(entries.values())


@router.post(
    "/uploads/{base}/changes",
    responses={
        404: {**PROBLEM, "description": "No content manifest `base` is stored: send it whole."},
        422: MANIFEST_REFUSED,
    },
)
def change_upload(
    base: Annotated[str, PathParam(pattern=DIGEST, description="An upload's id.")],
    body: UploadChanges,
    services: Shared,
) -> UploadAnswer:
    """Describe a tree as its changes to an upload made before (a redeploy of a large tree
    sends what changed, not every entry again); answered as `POST /api/uploads` answers,
    and nothing is written unless the tree the changes make is valid whole."""
    settings = services.settings
    limits = settings.unpack_limits
    try:
        before = services.manifests.items(base)
        items = _applied(
            before if before is not None else _stored_items(settings.layout, limits, base),
            body,
            base,
        )
        check(items, limits)
    except ManifestError as err:
        raise _refused(err) from None
    return _taken(services, items)


BLOB_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes: their sha256 must be the digest in the path.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/blobs/{digest}",
    status_code=204,
    openapi_extra=BLOB_BODY,
    responses={
        413: {**PROBLEM, "description": "Larger than a file may be."},
        422: {**PROBLEM, "description": "The bytes do not hash to the digest (`blob:`)."},
    },
)
async def put_blob(
    digest: Annotated[str, PathParam(pattern=DIGEST, description="sha256 of the content.")],
    request: Request,
    services: Shared,
) -> Response:
    """Store one file's content under its sha256, verified while it streams in; a blob
    already there is verified and kept as it is."""
    limit = services.settings.unpack_max_file_bytes
    uploads = services.settings.layout.uploads
    writer: BlobWriter | None = None
    pending = bytearray()
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                if writer is None:
                    writer = await asyncio.to_thread(BlobWriter, uploads, digest, limit)
                await asyncio.to_thread(writer.write, bytes(pending))
                pending.clear()
        if writer is None:  # the common case, a small file: one thread hop for all of it
            await asyncio.to_thread(put, uploads, digest, bytes(pending), limit)
        else:
            await asyncio.to_thread(writer.write, bytes(pending))
            await asyncio.to_thread(writer.commit)
    except BlobError as err:
        if writer is not None:
            await asyncio.to_thread(writer.discard)
        status = 413 if isinstance(err, BlobTooLargeError) else 422
        raise HTTPException(status, f"blob: {err}") from None
    except BaseException:
        if writer is not None:
            await asyncio.to_thread(writer.discard)
        raise
    return Response(status_code=204)


def _ready(
    layout: Layout,
    limits: UnpackLimits,
    upload_id: str,
    lacked: dict[str, tuple[str, int]] | None,
) -> None:
    """Refuse to deploy an upload that is not a stored manifest, or whose contents have not
    all arrived (of an upload this process just took, only those it `lacked` then)."""
    path = layout.upload(upload_id)
    try:
        with path.open("rb") as handle:
            data = handle.read(largest(limits) + 1)
    except FileNotFoundError:
        raise HTTPException(
            404, f"no upload {upload_id} is stored: POST its manifest to /api/uploads"
        ) from None
    try:
        if not data.startswith(HEAD):
            raise ManifestError(f"upload {upload_id} is not a content manifest")
        if len(data) > largest(limits):
            raise ManifestError("the manifest is larger than any within the limits")
        if lacked is None:
            items = parse(data, limits)
        else:
            items = [Item(p, "file", size, sha256=digest) for digest, (p, size) in lacked.items()]
        lacking = missing_blobs(layout.uploads, items)
    except ManifestError as err:
        raise _refused(err) from None
    if lacking:
        raise HTTPException(
            422,
            f"manifest: {len(lacking)} of its contents are not stored, such as {lacking[0]}: "
            "PUT each to /api/blobs/{sha256} first",
        )


async def _deploy(services: Services, body: UploadDeployment, deployment_id: str) -> None:
    settings = services.settings
    lacked = services.described.lacking(body.upload_id)
    await asyncio.to_thread(_ready, settings.layout, settings.unpack_limits, body.upload_id, lacked)
    await api.deploy_stored(
        await services.temporal(),
        settings,
        body.upload_id,
        body.project,
        source=f"upload {body.name or body.upload_id[:12]}",
        source_commit=body.commit,
        deployment_id=deployment_id,
        engine=services.engine,
        env=body.env,
        preview=body.preview,
    )


async def create_from_upload(
    body: UploadDeployment,
    response: Response,
    services: Shared,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Deploy an upload made through /api/uploads and /api/blobs (the JSON body of
    POST /api/deployments, whose schema that operation states)."""
    site = deployed_to(body.project, body.preview)
    deployment_id, earlier = await keyed(services, idempotency_key, site)
    if earlier is not None:
        return accepted(response, earlier, "already started with this Idempotency-Key")
    await _deploy(services, body, deployment_id)
    return accepted(response, deployment_id, "queued")


router.add_api_route(
    "/deployments",
    create_from_upload,
    methods=["POST"],
    status_code=202,
    include_in_schema=False,
    route_class_override=JsonBody,
)
