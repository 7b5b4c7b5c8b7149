"""The CLI's commands answered by a Slipway API on another machine: with SLIPWAY_API_URL and
SLIPWAY_API_TOKEN set, `slipway` needs no database, upload store or Temporal address here.

A directory is deployed as content: its manifest first (`POST /api/uploads`; from a
directory deployed to this API before, only its changes to the upload sent then,
`POST /api/uploads/{base}/changes`), then only the files whose contents the server lacks
(`PUT /api/blobs/{sha256}`, several at once), then the deployment of that upload; an
archive goes as it is (multipart). Progress and logs follow the deployment's server-sent
events. The few server models that load the database's modules are imported by the commands
that show them, so that the CLI starts quickly.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

from slipway.limits import UnpackLimits
from slipway.metadata import Metadata
from slipway.models import (
    DeploymentView,
    GitSource,
    LifecycleAction,
    LifecycleResult,
    LogEntry,
    PreviewView,
)
from slipway.names import InvalidNameError, validate_project_name
from slipway.phases import Phase, Status
from starter.backend import (
    FAILED,
    TOKEN_VARIABLE,
    URL_VARIABLE,
    USAGE,
    Refusal,
    StuckListing,
    Unreachable,
    is_whole,
    one_of,
    parse_id,
)
from starter.uploads import ARCHIVE_SUFFIXES, UploadError

if TYPE_CHECKING:
    from slipway.analytics import Stats
    from slipway.domains import DomainView
    from slipway.project_health import ProjectHealth, ProjectSummary
    from starter.project_env import EnvChange, EnvListing
    from starter.projects import SourceSettings, SourceView
    from starter.tree import Described

PARALLEL = 8
"""Blobs sent at once: enough to keep the server busy while each request waits on the
network, few enough not to crowd it."""

STREAMED_BYTES = 4 * 1024 * 1024
"""A file larger than this is streamed from disk; a smaller one is read whole first."""

NOT_YET_RECORDED = 40
"""Looks (0.25 s apart) for a deployment whose row has not been written yet."""

RECONNECTS = 60
"""Attempts, a second apart, to open an event stream again before giving up on the API."""

LAST_ROW = 2**63 - 1
"""An `after` past every log row: the progress stream wants states, not lines."""


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _Eta(_Wire):
    remaining_seconds: float


class _Deployment(_Wire):
    """A deployment as the API shows it (`starter.http.schemas.Deployment`)."""

    id: str
    project: str
    status: Status
    phase: Phase
    progress: int
    metadata: Metadata
    updated_at: datetime
    phase_updated_at: datetime
    created_at: datetime
    workflow_id: str
    source: str
    temporal_url: str
    eta: _Eta | None = None

    def view(self) -> DeploymentView:
        return DeploymentView(**self.model_dump(include=set(DeploymentView.model_fields)))


class _Upload(_Wire):
    upload_id: str
    missing: list[str]


class _Accepted(_Wire):
    id: str
    message: str


class _Problem(_Wire):
    detail: str


_DEPLOYMENTS = TypeAdapter(list[_Deployment])
_LOGS = TypeAdapter(list[LogEntry])
_PREVIEWS = TypeAdapter(list[PreviewView])


class _SourceSet(BaseModel):
    """PUT /api/projects/{name}/source's answer, as this client reads it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    source: dict[str, str | bool | None]
    generated_webhook_secret: str | None = None


def _duration(delta: timedelta) -> str:
    """A duration as the API takes it: a number and the largest unit that divides it."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _source_name(path: Path) -> str | None:
    """The directory's name as the API records it as the source (`upload <name>`)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.name or path.resolve().name)[-100:]
    return name or None


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, str | None, str]]:
    """(event, id, data) of each event of a text/event-stream response."""
    name, event_id, data = "message", None, list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, event_id, "\n".join(data)
            name, event_id, data = "message", None, []
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "id":
                event_id = value
            elif key == "data":
                data.append(value)


class Remote:
    """A Slipway API at `url`, with its bearer token."""

    def __init__(self, url: str, token: str, environ: Mapping[str, str]) -> None:
        self.url = url.rstrip("/")
        self.environ = environ
        self.http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(120.0, connect=10.0),
            limits=httpx.Limits(max_connections=PARALLEL),
            # Requests go only to `url` and redirects are not followed: an http:// API is
            # never spoken to over TLS, so no certificate store is loaded for it.
            verify=self.url.startswith("https://"),
        )
        self._etas: dict[str, float | None] = {}
        self._links: dict[str, str] = {}

    @classmethod
    def configured(cls, environ: Mapping[str, str]) -> Remote | None:
        """The API the environment names, or None when SLIPWAY_API_URL is unset."""
        url = environ.get(URL_VARIABLE, "")
        if not url:
            return None
        token = environ.get(TOKEN_VARIABLE, "")
        if not token:
            raise Refusal(f"{URL_VARIABLE} is set: set {TOKEN_VARIABLE} to the API's token too")
        return cls(url, token, environ)

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        data: Mapping[str, str | list[str]] | None = None,
        files: Mapping[str, tuple[str, BinaryIO, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request; an unreachable API or a refused token ends the command."""
        try:
            answer = await self.http.request(
                method,
                path,
                params=params,
                json=json,
                content=content,
                data=data,
                files=files,
                headers=headers,
            )
        except httpx.TransportError as err:
            raise Unreachable(
                f"cannot reach the API at {self.url} ({type(err).__name__}): is it running? "
                f"Check {URL_VARIABLE}"
            ) from None
        if answer.status_code == 401:
            raise Refusal(f"the API at {self.url} refused the token: check {TOKEN_VARIABLE}")
        return answer

    @staticmethod
    def _refused(answer: httpx.Response) -> Refusal:
        try:
            detail = _Problem.model_validate_json(answer.content).detail
        except ValidationError:
            detail = f"the API answered {answer.status_code}: {answer.text[:200]}"
        if answer.status_code == 503:
            return Unreachable(detail)
        return Refusal(
            detail, FAILED if answer.status_code == 409 or answer.status_code >= 500 else USAGE
        )

    async def _read(self, path: str, params: Mapping[str, str | int] | None = None) -> bytes:
        answer = await self._request("GET", path, params=params)
        if answer.status_code != 200:
            raise self._refused(answer)
        return answer.content

    async def resolve(self, given: str) -> str:
        wanted = parse_id(given)
        if is_whole(wanted):
            return wanted
        found = await self._read("/api/deployments", params={"idPrefix": wanted, "limit": 2})
        return one_of(given, [d.id for d in _DEPLOYMENTS.validate_json(found)])

    async def deploy(
        self,
        path: Path,
        project: str,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        try:
            validate_project_name(project)
        except InvalidNameError as err:
            raise Refusal(str(err)) from None
        if await asyncio.to_thread(path.is_dir):
            return await self._deploy_tree(path, project, commit, env, preview)
        if await asyncio.to_thread(path.is_file) and path.name.endswith(ARCHIVE_SUFFIXES):
            return await self._deploy_archive(path, project, commit, env, preview)
        raise Refusal(f"{path} is neither a directory nor a {', '.join(ARCHIVE_SUFFIXES)} archive")

    async def _deploy_archive(
        self, path: Path, project: str, commit: str | None, env: dict[str, str], preview: str | None
    ) -> str:
        fields: dict[str, str | list[str]] = {"project": project}
        if commit:
            fields["commit"] = commit
        if preview:
            fields["preview"] = preview
        if env:
            fields["env"] = [f"{name}={value}" for name, value in env.items()]
        with path.open("rb") as archive:
            files = {"file": (path.name, archive, "application/octet-stream")}
            answer = await self._request("POST", "/api/deployments", data=fields, files=files)
        return self._accepted(answer)

    def _accepted(self, answer: httpx.Response) -> str:
        if answer.status_code != 202:
            raise self._refused(answer)
        return _Accepted.model_validate_json(answer.content).id

    async def _deploy_tree(
        self, path: Path, project: str, commit: str | None, env: dict[str, str], preview: str | None
    ) -> str:
        """Describe the tree, send what the server lacks, deploy the upload."""
        # Here, not at the top: only a directory's deployment describes a tree.
        from starter.tree import Sent, cache_file, describe, remember

        cache = cache_file(path, self.environ)
        try:
            tree = await asyncio.to_thread(describe, path, UnpackLimits(), cache, self.url)
        except UploadError as err:
            raise Refusal(str(err)) from None
        upload = await self._changed(tree) if tree.sent is not None else None
        if upload is None:
            upload = await self._manifest(tree)
        sent = Sent(self.url, upload.upload_id)
        await asyncio.gather(
            asyncio.to_thread(remember, cache, path, tree, sent),
            self._send_all(upload.missing, tree),
        )
        body: dict[str, object] = {"project": project, "uploadId": upload.upload_id}
        body |= {"name": _source_name(path), "commit": commit, "env": env, "preview": preview}
        answer = await self._request("POST", "/api/deployments", json=body)
        return self._accepted(answer)

    async def _manifest(self, tree: Described) -> _Upload:
        """Send the tree's whole manifest (`POST /api/uploads`)."""
        from activities.adapters.content_manifest import as_json

        answer = await self._json("/api/uploads", {"entries": [as_json(i) for i in tree.items]})
        if answer.status_code != 200:
            raise self._refused(answer)
        return _Upload.model_validate_json(answer.content)

    async def _changed(self, tree: Described) -> _Upload | None:
        """Send the tree as its changes to the upload last sent from it
        (`POST /api/uploads/{base}/changes`); None if the API does not hold that upload
        (cleaned away, or an API that takes only whole manifests)."""
        from activities.adapters.content_manifest import as_json
        from starter.tree import changes

        assert tree.sent is not None
        changed, removed = changes(tree)
        document = {"entries": [as_json(item) for item in changed], "removed": removed}
        answer = await self._json(f"/api/uploads/{tree.sent.upload_id}/changes", document)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise self._refused(answer)
        return _Upload.model_validate_json(answer.content)

    async def _json(self, path: str, document: object) -> httpx.Response:
        """POST a document as compact JSON."""
        body = json.dumps(document, separators=(",", ":")).encode()
        return await self._request(
            "POST", path, content=body, headers={"Content-Type": "application/json"}
        )

    async def _send_all(self, missing: list[str], tree: Described) -> None:
        gate = asyncio.Semaphore(PARALLEL)
        try:
            async with asyncio.TaskGroup() as group:
                for digest in missing:
                    if digest not in tree.sources:
                        raise Refusal(f"the API asked for content {digest}, which is not here")
                    group.create_task(self._send(digest, Path(tree.sources[digest]), gate))
        except* Refusal as refused:
            raise refused.exceptions[0] from None

    async def _send(self, digest: str, source: Path, gate: asyncio.Semaphore) -> None:
        """PUT one file's content under its sha256."""
        async with gate:
            size, whole = await asyncio.to_thread(_small, source)
            content = whole if whole is not None else _chunks(source)
            answer = await self._request(
                "PUT",
                f"/api/blobs/{digest}",
                content=content,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
        if answer.status_code == 422:
            raise Refusal(f"{source} changed while it was uploaded: deploy again")
        if answer.status_code != 204:
            raise self._refused(answer)

    async def status(self, deployment_id: str, stack: bool = False) -> DeploymentView | None:
        answer = await self._request(
            "GET", f"/api/deployments/{deployment_id}", params={"stack": "true"} if stack else None
        )
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise self._refused(answer)
        return self._seen(_Deployment.model_validate_json(answer.content))

    def _seen(self, document: _Deployment) -> DeploymentView:
        self._links[document.id] = document.temporal_url
        self._etas[document.id] = document.eta.remaining_seconds if document.eta else None
        return document.view()

    async def health(self, project: str) -> ProjectHealth:
        from slipway.project_health import ProjectHealth

        for summary in await self.projects():
            if summary.name == project:
                return summary.health
        return ProjectHealth()

    async def logs(self, deployment_id: str) -> list[LogEntry]:
        answer = await self._request("GET", f"/api/deployments/{deployment_id}/logs")
        if answer.status_code == 404:
            return []
        if answer.status_code != 200:
            raise self._refused(answer)
        return _LOGS.validate_json(answer.content)

    async def _stream(self, deployment_id: str, after: int) -> AsyncIterator[tuple[str, str]]:
        """(event, data) of the deployment's event stream until its `end` event; a dropped
        connection is opened again after the last log line seen. One `missing` event when
        the deployment is not recorded."""
        path = f"/api/deployments/{deployment_id}/events"
        timeout = httpx.Timeout(120.0, connect=10.0, read=None)
        failures = 0
        while True:
            try:
                async with self.http.stream(
                    "GET", path, params={"after": after}, timeout=timeout
                ) as response:
                    if response.status_code == 404:
                        yield "missing", ""
                        return
                    if response.status_code != 200:
                        await response.aread()
                        raise self._refused(response)
                    failures = 0
                    async for name, event_id, data in _events(response):
                        if name == "log" and event_id:
                            after = int(event_id)
                        yield name, data
                        if name == "end":
                            return
            except httpx.TransportError as err:
                failures += 1
                if failures > RECONNECTS:
                    raise Unreachable(
                        f"lost the API at {self.url} ({type(err).__name__}): is it running?"
                    ) from None
                await asyncio.sleep(1.0)

    async def follow_logs(self, deployment_id: str, after: int) -> AsyncIterator[LogEntry]:
        async for name, data in self._stream(deployment_id, after):
            if name == "log":
                yield LogEntry.model_validate_json(data)

    async def progress(self, deployment_id: str) -> AsyncIterator[DeploymentView | None]:
        for _ in range(NOT_YET_RECORDED):
            async for name, data in self._stream(deployment_id, LAST_ROW):
                if name == "missing":
                    yield None
                elif name in ("state", "end"):
                    yield self._seen(_Deployment.model_validate_json(data))
                if name == "end":
                    return
            await asyncio.sleep(0.25)

    def eta(self, view: DeploymentView) -> float | None:
        return self._etas.get(view.id)

    async def temporal_url(self, deployment_id: str) -> str:
        if deployment_id not in self._links:
            await self.status(deployment_id)
        return self._links.get(deployment_id, "")

    async def listing(
        self, project: str | None, status: Status | None, limit: int
    ) -> list[DeploymentView]:
        query: dict[str, str | int] = {"limit": limit}
        if project is not None:
            query["project"] = project
        if status is not None:
            query["status"] = status.value
        found = await self._read("/api/deployments", params=query)
        return [document.view() for document in _DEPLOYMENTS.validate_json(found)]

    async def _post(self, path: str, json: object = None) -> _Accepted:
        answer = await self._request("POST", path, json=json)
        if answer.status_code != 202:
            raise self._refused(answer)
        return _Accepted.model_validate_json(answer.content)

    async def cancel(self, deployment_id: str) -> str:
        answer = await self._request("POST", f"/api/deployments/{deployment_id}/cancel")
        if answer.status_code == 404:
            raise Refusal(f"deployment {deployment_id} is not recorded: nothing to cancel")
        if answer.status_code != 202:
            raise self._refused(answer)
        return _Accepted.model_validate_json(answer.content).message

    async def resume(self, deployment_id: str) -> None:
        await self._post(f"/api/deployments/{deployment_id}/resume")

    async def deploy_git(
        self,
        project: str,
        git: GitSource | None,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        body = {"git": git.model_dump() if git else None, "commit": commit, "env": env}
        body |= {"preview": preview}
        return (await self._post(f"/api/projects/{project}/deployments", json=body)).id

    async def promote(self, project: str, preview: str) -> str:
        return (await self._post(f"/api/projects/{project}/previews/{preview}/promote")).id

    async def previews(self, project: str | None) -> list[PreviewView]:
        path = f"/api/projects/{project}/previews" if project else "/api/previews"
        return _PREVIEWS.validate_json(await self._read(path))

    async def remove_preview(self, project: str, preview: str) -> None:
        answer = await self._request("DELETE", f"/api/projects/{project}/previews/{preview}")
        if answer.status_code != 202:
            raise self._refused(answer)

    async def set_source(
        self, project: str, change: SourceSettings
    ) -> tuple[SourceView, str | None]:
        from starter.projects import SourceView

        answer = await self._request(
            "PUT",
            f"/api/projects/{project}/source",
            json=change.model_dump(by_alias=True, exclude_none=True),
        )
        if answer.status_code != 200:
            raise self._refused(answer)
        kept = _SourceSet.model_validate_json(answer.content)
        return SourceView.model_validate(kept.source), kept.generated_webhook_secret

    async def source(self, project: str) -> SourceView:
        from starter.projects import SourceView

        return SourceView.model_validate_json(await self._read(f"/api/projects/{project}/source"))

    async def env_list(self, project: str) -> EnvListing:
        from starter.project_env import EnvListing

        return EnvListing.model_validate_json(await self._read(f"/api/projects/{project}/env"))

    async def _env_answer(self, answer: httpx.Response) -> EnvChange:
        from starter.project_env import EnvChange

        if answer.status_code != 200:
            raise self._refused(answer)
        return EnvChange.model_validate_json(answer.content)

    async def env_change(
        self, project: str, values: dict[str, str], unset: list[str], redeploy: bool
    ) -> EnvChange:
        body = {"set": values, "unset": unset, "redeploy": redeploy}
        path = f"/api/projects/{project}/env"
        return await self._env_answer(await self._request("PATCH", path, json=body))

    async def env_import(self, project: str, dotenv: str, redeploy: bool) -> EnvChange:
        body = {"dotenv": dotenv, "redeploy": redeploy}
        path = f"/api/projects/{project}/env/import"
        return await self._env_answer(await self._request("POST", path, json=body))

    async def set_previews(self, project: str, enabled: bool) -> SourceView:
        from starter.projects import SourceView

        answer = await self._request(
            "PUT", f"/api/projects/{project}/previews", json={"enabled": enabled}
        )
        if answer.status_code != 200:
            raise self._refused(answer)
        return SourceView.model_validate_json(answer.content)

    async def app_logs(self, project: str, tail: int | None, since: timedelta | None) -> list[str]:
        params: dict[str, str | int] = {"tail": tail} if tail is not None else {}
        if since is not None:
            params["since"] = _duration(since)
        found = await self._read(f"/api/projects/{project}/logs", params=params)
        return TypeAdapter(list[str]).validate_json(found)

    async def follow_app_logs(self, project: str) -> AsyncIterator[str]:
        path = f"/api/projects/{project}/logs/events"
        timeout = httpx.Timeout(120.0, connect=10.0, read=None)
        async with self.http.stream("GET", path, timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                raise self._refused(response)
            async for name, _, data in _events(response):
                if name == "line":
                    yield data

    async def add_domain(
        self,
        project: str,
        name: str,
        redirect_www: bool,
        certificate: str | None,
        key: str | None,
    ) -> DomainView:
        from slipway.domains import DomainView

        if certificate is not None or key is not None:
            raise Refusal(
                "a certificate of your own is given on the server (the API does not take it)"
            )
        answer = await self._request(
            "POST",
            f"/api/projects/{project}/domains",
            json={"name": name, "redirectWww": redirect_www},
        )
        if answer.status_code not in (200, 201):
            raise self._refused(answer)
        return DomainView.model_validate_json(answer.content)

    async def remove_domain(self, project: str, name: str) -> DomainView:
        from slipway.domains import DomainView

        answer = await self._request("DELETE", f"/api/projects/{project}/domains/{name}")
        if answer.status_code != 200:
            raise self._refused(answer)
        return DomainView.model_validate_json(answer.content)

    async def domains(self, project: str | None) -> list[DomainView]:
        from slipway.domains import DomainView

        path = f"/api/projects/{project}/domains" if project else "/api/domains"
        return TypeAdapter(list[DomainView]).validate_json(await self._read(path))

    async def lifecycle(
        self, project: str, action: LifecycleAction, cancel: bool
    ) -> LifecycleResult:
        if action is LifecycleAction.DELETE:
            params: dict[str, str | int] = {"cancel": "true"} if cancel else {}
            answer = await self._request("DELETE", f"/api/projects/{project}", params=params)
        else:
            answer = await self._request("POST", f"/api/projects/{project}/{action.value}")
        if answer.status_code != 200:
            raise self._refused(answer)
        return LifecycleResult.model_validate_json(answer.content)

    async def rollback(self, project: str, to: str | None) -> str:
        body = {"to": to} if to is not None else None
        return (await self._post(f"/api/projects/{project}/rollback", json=body)).id

    async def stuck(
        self, older_than: timedelta, limit: int | None, after: str | None
    ) -> StuckListing:
        from starter.http.schemas import Stuck

        params: dict[str, str | int] = {"olderThan": _duration(older_than)}
        if limit is not None:
            params["limit"] = limit
        if after is not None:
            params["after"] = after
        answer = await self._request("GET", "/api/deployments/stuck", params=params)
        if answer.status_code != 200:
            raise self._refused(answer)
        found = TypeAdapter(list[Stuck]).validate_json(answer.content)
        following = answer.links.get("next", {}).get("url")
        return StuckListing(found, httpx.URL(following).params.get("after") if following else None)

    async def projects(self) -> list[ProjectSummary]:
        from slipway.project_health import ProjectSummary

        return TypeAdapter(list[ProjectSummary]).validate_json(await self._read("/api/projects"))

    async def stats(self, since: timedelta) -> Stats:
        from slipway.analytics import Stats

        found = await self._read("/api/analytics/phases", params={"since": _duration(since)})
        return Stats.model_validate_json(found)


def _small(source: Path) -> tuple[int, bytes | None]:
    """A file's size, and its bytes if it is small enough to send from memory."""
    size = source.stat().st_size
    if size > STREAMED_BYTES:
        return size, None
    whole = source.read_bytes()
    return len(whole), whole


async def _chunks(source: Path) -> AsyncIterator[bytes]:
    """A large file's bytes, read a MiB at a time off the event loop."""
    with source.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, 1 << 20):
            yield chunk
