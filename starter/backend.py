"""What the CLI's commands ask of a server, answered either here (`starter.local`: the
database, Temporal and the upload store of this machine) or from another machine
(`starter.remote`: the HTTP API alone). The commands draw the answers through the same
renderers, so both print the same."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Types only: each command loads what it uses when it runs, so `slipway --help` starts
    # without the models (pydantic) or the server's modules.
    from slipway.analytics import Stats
    from slipway.domains import DomainView
    from slipway.models import (
        DeploymentView,
        GitSource,
        LifecycleAction,
        LifecycleResult,
        LogEntry,
        PreviewView,
    )
    from slipway.phases import Status
    from slipway.project_health import ProjectHealth, ProjectSummary
    from starter.http.schemas import Stuck
    from starter.project_env import EnvChange, EnvListing
    from starter.projects import SourceSettings, SourceView

URL_VARIABLE, TOKEN_VARIABLE = "SLIPWAY_API_URL", "SLIPWAY_API_TOKEN"
"""With these set, the commands ask that Slipway API (`starter.remote`), not this machine."""

SHORT_ID = 8
"""Characters of a deployment id that `ls` shows and every command accepts."""

_FULL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
"""Every command's exit status: 0 it did what was asked; 1 the deployment failed or the
operation was refused (the state does not allow it); 2 bad usage, or what it names is not
found; 3 a component (PostgreSQL, Temporal, the API) does not answer. README documents it."""


class Refusal(Exception):
    """A command that cannot be carried out as asked: the message says why, `code` is the
    exit status (USAGE: fix the command or what it names; FAILED: refused or failed)."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


class Unreachable(Refusal):
    """A component the command needs does not answer: the message names it and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, UNREACHABLE)


@dataclass(frozen=True)
class StuckListing:
    """A page of stuck deployments, and the cursor of the next page (None on the last)."""

    found: list[Stuck]
    after: str | None


def parse_id(given: str) -> str:
    """A deployment id as given, in canonical form: the whole id (36 characters), or the
    canonical start (lowercase, with its hyphens) of the ids it may name."""
    text = given.strip().lower()
    if _FULL.fullmatch(text):
        return text
    digits = text.replace("-", "")
    if not re.fullmatch(r"[0-9a-f]{1,32}", digits):
        raise Refusal(f"invalid deployment id {given!r}: expected a UUID or its first characters")
    if len(digits) < SHORT_ID:
        raise Refusal(
            f"invalid deployment id {given!r}: give at least its first {SHORT_ID} characters"
        )
    groups, start = [], 0
    for width in (8, 4, 4, 4, 12):
        if start < len(digits):
            groups.append(digits[start : start + width])
        start += width
    return "-".join(groups)


def is_whole(deployment_id: str) -> bool:
    """True for a whole id in canonical form, as `parse_id` returns one."""
    return bool(_FULL.fullmatch(deployment_id))


def one_of(given: str, found: list[str]) -> str:
    """The one deployment id a prefix names, or a refusal saying why there is not one."""
    if not found:
        raise Refusal(f"no deployment id begins with {given!r}")
    if len(found) > 1:
        raise Refusal(
            f"{given!r} is the start of several deployment ids ({', '.join(found)}): "
            "give more of it"
        )
    return found[0]


class Backend(Protocol):
    """The server side of every command that works from another machine."""

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    async def resolve(self, given: str) -> str:
        """The whole id of the deployment `given` names: a whole id, or a unique start of
        one of at least 8 characters."""
        ...

    async def deploy(
        self,
        path: Path,
        project: str,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        """Upload PATH and queue its deployment (to the project's preview `preview`, if
        given); its id."""
        ...

    async def deploy_git(
        self,
        project: str,
        git: GitSource | None,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        """Queue a deployment from a repository (else the project's own, at its branch)."""
        ...

    async def promote(self, project: str, preview: str) -> str:
        """Switch the project to its preview's release, as a deployment; its id."""
        ...

    async def previews(self, project: str | None) -> list[PreviewView]:
        """The previews not removed (of one project, or all)."""
        ...

    async def remove_preview(self, project: str, preview: str) -> None:
        """Have the preview removed; a refusal if the project has no such preview."""
        ...

    async def set_source(
        self, project: str, change: SourceSettings
    ) -> tuple[SourceView, str | None]:
        """Set the project's source; what is kept, and a webhook secret generated now."""
        ...

    async def source(self, project: str) -> SourceView: ...

    async def env_list(self, project: str) -> EnvListing:
        """The project's current environment version, its values masked."""
        ...

    async def env_change(
        self, project: str, values: dict[str, str], unset: list[str], redeploy: bool
    ) -> EnvChange:
        """A new version with `values` set and `unset` removed; with `redeploy`, a
        deployment started with it."""
        ...

    async def env_import(self, project: str, dotenv: str, redeploy: bool) -> EnvChange:
        """A new version with every variable of a `.env` file's text set."""

    async def set_previews(self, project: str, enabled: bool) -> SourceView:
        """Turn the project's previews from pushes to other branches on or off."""
        ...

    async def app_logs(self, project: str, tail: int | None, since: timedelta | None) -> list[str]:
        """The last lines the project's serving container printed, secrets masked."""
        ...

    def follow_app_logs(self, project: str) -> AsyncIterator[str]:
        """The container's lines as it prints them."""
        ...

    async def add_domain(
        self,
        project: str,
        name: str,
        redirect_www: bool,
        certificate: str | None,
        key: str | None,
    ) -> DomainView:
        """Have the project answer at `name`; the route changes without a redeploy."""
        ...

    async def remove_domain(self, project: str, name: str) -> DomainView: ...

    async def domains(self, project: str | None) -> list[DomainView]: ...

    async def status(self, deployment_id: str, stack: bool = False) -> DeploymentView | None:
        """The deployment's row; a failure's stack (server paths) only with `stack`."""
        ...

    async def health(self, project: str) -> ProjectHealth: ...

    async def logs(self, deployment_id: str) -> list[LogEntry]: ...

    def follow_logs(self, deployment_id: str, after: int) -> AsyncIterator[LogEntry]:
        """Log lines after row `after` as they are written, until the deployment ends."""
        ...

    def progress(self, deployment_id: str) -> AsyncIterator[DeploymentView | None]:
        """The deployment each time it moves, until it ends (None while it is not
        recorded)."""
        ...

    def eta(self, view: DeploymentView) -> float | None:
        """Seconds the deployment `progress` last gave should still take, if known."""
        ...

    async def temporal_url(self, deployment_id: str) -> str:
        """The deployment's workflow in the Temporal UI."""
        ...

    async def listing(
        self, project: str | None, status: Status | None, limit: int
    ) -> list[DeploymentView]: ...

    async def cancel(self, deployment_id: str) -> str: ...

    async def resume(self, deployment_id: str) -> None: ...

    async def rollback(self, project: str, to: str | None) -> str: ...

    async def stuck(
        self, older_than: timedelta, limit: int | None, after: str | None
    ) -> StuckListing:
        """A page of `limit` (the server's default when None) stuck deployments, the
        longest stuck first, beginning after the cursor `after`."""
        ...

    async def projects(self) -> list[ProjectSummary]: ...

    async def lifecycle(
        self, project: str, action: LifecycleAction, cancel: bool
    ) -> LifecycleResult:
        """Stop, start, restart or delete the project (a delete with `cancel` cancels its
        deployments under way first); what was done, once it is done."""
        ...

    async def stats(self, since: timedelta) -> Stats: ...
