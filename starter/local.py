"""The CLI's commands answered on this machine: its database, its Temporal server and its
upload store, through `starter.api` (what `slipway` does when SLIPWAY_API_URL is unset).
Database calls run in threads, never on the event loop.

What reads the database alone (`status`, `logs`, `ls`, `projects`, `stats`) loads neither
Temporal's client nor Docker's: the modules that act through them are imported by the
methods that use them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from slipway import monitoring, queries, tracing
from slipway.analytics import eta as estimate
from slipway.analytics import recent_medians
from slipway.analytics import stats as deployment_stats
from slipway.database import engine_for
from slipway.environment import EnvError
from slipway.lifecycle import ProjectNotFoundError
from slipway.names import InvalidNameError, validate_deployment_id
from slipway.phases import Phase
from slipway.project_sources import ProjectError
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter.backend import (
    FAILED,
    USAGE,
    Refusal,
    StuckListing,
    is_whole,
    one_of,
    parse_id,
)
from starter.outages import temporal_down
from starter.uploads import UploadError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from temporalio.client import Client

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
    from starter import project_env, projects

REMOVED_BY_CLI = "removed with `slipway previews rm`"
"""The reason the project's history records for a removal asked on the server."""


@contextmanager
def refusing() -> Iterator[None]:
    """The core's refusals as a message and an exit status, not a traceback: what is not
    found or not valid is the command's to fix (USAGE); what the state does not allow is
    refused (FAILED). The modules that define the rest of them are imported only when
    something went wrong."""
    try:
        yield
    except (InvalidNameError, UploadError, ProjectError, EnvError, ProjectNotFoundError) as err:
        raise Refusal(str(err), USAGE) from None
    except Exception as err:
        from slipway.domains import DomainConflictError, DomainNotFoundError
        from starter import api, applogs, lifecycle
        from starter.domains import CertificateError

        not_found = (
            api.NotRecordedError,
            applogs.AppLogsError,
            CertificateError,
            DomainNotFoundError,
        )
        if isinstance(err, not_found):
            raise Refusal(str(err), USAGE) from None
        if isinstance(err, (api.DeploymentError, DomainConflictError, lifecycle.LifecycleError)):
            raise Refusal(str(err), FAILED) from None
        raise


class Local:
    """This machine's server, from its `SLIPWAY_*` settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._client: Client | None = None
        self._medians: dict[Phase, float] = {}

    async def __aenter__(self) -> Local:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.settings.sqlalchemy_url)

    async def client(self) -> Client:
        """The Temporal client, connected on first use."""
        if self._client is None:
            from slipway.temporal import connect

            tracing.start("slipway-cli")
            try:
                self._client = await connect(self.settings)
            except RuntimeError:
                raise temporal_down(self.settings.temporal_address) from None
        return self._client

    async def resolve(self, given: str) -> str:
        wanted = parse_id(given)
        if is_whole(wanted):
            return wanted
        found = await asyncio.to_thread(queries.recent, self.engine, None, None, 2, wanted)
        return one_of(given, [view.id for view in found])

    async def deploy(
        self,
        path: Path,
        project: str,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        from starter import api

        with refusing():
            return await api.start_deployment(
                await self.client(),
                self.settings,
                path,
                project,
                source_commit=commit,
                env=env,
                preview=preview,
            )

    async def deploy_git(
        self,
        project: str,
        git: GitSource | None,
        commit: str | None,
        env: dict[str, str],
        preview: str | None = None,
    ) -> str:
        from starter import api

        with refusing():
            return await api.start_deployment(
                await self.client(),
                self.settings,
                None,
                project,
                git=git,
                source_commit=commit,
                env=env,
                preview=preview,
            )

    async def set_source(
        self, project: str, change: projects.SourceSettings
    ) -> tuple[projects.SourceView, str | None]:
        from starter import projects

        with refusing():
            generated = await asyncio.to_thread(
                projects.apply, self.engine, self.settings, project, change
            )
            return await asyncio.to_thread(projects.show, self.engine, project), generated

    async def source(self, project: str) -> projects.SourceView:
        from starter import projects

        with refusing():
            return await asyncio.to_thread(projects.show, self.engine, project)

    async def env_list(self, project: str) -> project_env.EnvListing:
        from starter import project_env

        with refusing():
            return await asyncio.to_thread(project_env.listing, self.engine, self.settings, project)

    async def env_change(
        self, project: str, values: dict[str, str], unset: list[str], redeploy: bool
    ) -> project_env.EnvChange:
        from starter import project_env

        with refusing():
            version = await asyncio.to_thread(
                project_env.change, self.engine, self.settings, project, values, unset
            )
            return await project_env.applied(
                self.client, self.settings, self.engine, version, redeploy
            )

    async def env_import(self, project: str, dotenv: str, redeploy: bool) -> project_env.EnvChange:
        from starter import project_env

        with refusing():
            version = await asyncio.to_thread(
                project_env.import_dotenv, self.engine, self.settings, project, dotenv
            )
            return await project_env.applied(
                self.client, self.settings, self.engine, version, redeploy
            )

    async def set_previews(self, project: str, enabled: bool) -> projects.SourceView:
        from starter import projects

        with refusing():
            await asyncio.to_thread(
                projects.set_previews, self.engine, self.settings, project, enabled
            )
            return await asyncio.to_thread(projects.show, self.engine, project)

    async def promote(self, project: str, preview: str) -> str:
        from starter import api

        with refusing():
            return await api.promote(
                await self.client(), self.settings, self.engine, project, preview
            )

    async def previews(self, project: str | None) -> list[PreviewView]:
        from starter import api

        return await asyncio.to_thread(api.list_previews, self.settings, self.engine, project)

    async def remove_preview(self, project: str, preview: str) -> None:
        from starter import api

        with refusing():
            removed = await api.remove_preview(
                await self.client(), self.settings, self.engine, project, preview, REMOVED_BY_CLI
            )
        if not removed:
            raise Refusal(f"{project} has no preview {preview}", USAGE)

    async def app_logs(self, project: str, tail: int | None, since: timedelta | None) -> list[str]:
        from starter import applogs

        with refusing():
            return await asyncio.to_thread(
                applogs.app_logs, self.settings, self.engine, project, tail, since
            )

    async def follow_app_logs(self, project: str) -> AsyncIterator[str]:
        from starter import applogs

        with refusing():
            async for line in applogs.follow_app_logs(self.settings, self.engine, project):
                yield line

    async def add_domain(
        self,
        project: str,
        name: str,
        redirect_www: bool,
        certificate: str | None,
        key: str | None,
    ) -> DomainView:
        from starter import domains

        with refusing():
            view, _ = await domains.add(
                await self.client(),
                self.engine,
                self.settings,
                project,
                name,
                redirect_www=redirect_www,
                certificate=certificate,
                key=key,
            )
            return view

    async def remove_domain(self, project: str, name: str) -> DomainView:
        from starter import domains

        with refusing():
            return await domains.remove(
                await self.client(), self.engine, self.settings, project, name
            )

    async def domains(self, project: str | None) -> list[DomainView]:
        from starter import domains

        with refusing():
            return await asyncio.to_thread(domains.listed, self.engine, project)

    async def status(self, deployment_id: str, stack: bool = False) -> DeploymentView | None:
        with refusing():
            wanted = validate_deployment_id(deployment_id)
            view = await asyncio.to_thread(queries.get_deployment, self.engine, wanted)
        if view is None or stack or "stack" not in view.metadata:
            return view
        kept = {key: value for key, value in view.metadata.items() if key != "stack"}
        return view.model_copy(update={"metadata": kept})

    async def health(self, project: str) -> ProjectHealth:
        return await asyncio.to_thread(monitoring.health_of, self.engine, project)

    async def logs(self, deployment_id: str) -> list[LogEntry]:
        with refusing():
            wanted = validate_deployment_id(deployment_id)
            return await asyncio.to_thread(queries.get_logs, self.engine, wanted)

    async def follow_logs(self, deployment_id: str, after: int) -> AsyncIterator[LogEntry]:
        from starter import api

        client = await self.client()
        async for entry in api.follow_logs(client, self.engine, deployment_id, after):
            yield entry

    async def progress(self, deployment_id: str) -> AsyncIterator[DeploymentView | None]:
        from starter import api

        client = await self.client()
        self._medians = await asyncio.to_thread(recent_medians, self.engine)
        async for view in api.follow(client, self.engine, deployment_id):
            yield view

    def eta(self, view: DeploymentView) -> float | None:
        left = estimate(view, self._medians, datetime.now(UTC))
        return left.remaining_seconds if left else None

    async def temporal_url(self, deployment_id: str) -> str:
        return self.settings.temporal_ui(deployment_workflow_id(deployment_id))

    async def listing(
        self, project: str | None, status: Status | None, limit: int
    ) -> list[DeploymentView]:
        return await asyncio.to_thread(queries.recent, self.engine, project, status, limit)

    async def cancel(self, deployment_id: str) -> str:
        from starter import api

        with refusing():
            return await api.cancel(await self.client(), self.engine, deployment_id)

    async def resume(self, deployment_id: str) -> None:
        from starter import api

        with refusing():
            await api.resume(await self.client(), self.settings, self.engine, deployment_id)

    async def rollback(self, project: str, to: str | None) -> str:
        from starter import api

        with refusing():
            client = await self.client()
            return await api.rollback(client, self.settings, self.engine, project, to)

    async def stuck(
        self, older_than: timedelta, limit: int | None, after: str | None
    ) -> StuckListing:
        from slipway.stuck import PageError, mark, page_size, stuck_page
        from starter.http.schemas import Stuck

        try:
            size = page_size(self.settings, limit)
            if after is not None:
                mark(after)
        except PageError as err:
            raise Refusal(str(err), USAGE) from None
        page = await stuck_page(self.engine, self.client, older_than, size, after)
        return StuckListing([Stuck.of(found) for found in page.found], page.after)

    async def lifecycle(
        self, project: str, action: LifecycleAction, cancel: bool
    ) -> LifecycleResult:
        from starter import lifecycle

        with refusing():
            return await lifecycle.change(
                await self.client(), self.settings, self.engine, project, action, cancel=cancel
            )

    async def projects(self) -> list[ProjectSummary]:
        return await asyncio.to_thread(monitoring.project_summaries, self.engine)

    async def stats(self, since: timedelta) -> Stats:
        return await asyncio.to_thread(deployment_stats, self.engine, since)
