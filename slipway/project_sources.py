"""Where a project's source comes from: a git repository and branch, remembered with the
project (`projects.source`), and the registry credentials its builds pull base images with.
The URL and branch are in clear; a token, an SSH key, the webhook secret and registry
credentials only ever sealed (see `slipway.secrets`)."""

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy.dialects.postgresql import insert

from slipway.git_remote import GitError, check_ref, check_url, shown
from slipway.models import GitSource
from slipway.tables import projects


class ProjectError(ValueError):
    """The project's source cannot be used or set as asked; the message says why."""


class ProjectSource(BaseModel):
    """A project's source settings, as stored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    git_url: str | None = None
    branch: str | None = None
    git_user: str | None = None
    sealed_token: str | None = None
    sealed_ssh_key: str | None = None
    sealed_webhook_secret: str | None = None
    sealed_registry_auth: str | None = None
    """The project's registry credentials for pulling base images (`Settings.registry_auth`'s
    JSON), sealed; they take precedence over the server's for the same registry."""
    notify_url: str | None = None
    previews: bool = False
    """A push to a branch other than the production one deploys that branch's preview."""

    def stored(self) -> dict[str, str]:
        """The camelCase JSON kept in the database."""
        return self.model_dump(by_alias=True, exclude_none=True)


def source_of(engine: sa.Engine, project: str) -> ProjectSource:
    """The project's source settings (empty for a project without any, or unknown)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(projects.c.source).where(projects.c.name == project)
        ).scalar()
    return ProjectSource.model_validate(found or {})


def set_source(engine: sa.Engine, project: str, domain: str, source: ProjectSource) -> None:
    """Remember the project's source; a project that does not exist yet is created (it is
    pinned to a server by its first deployment)."""
    with engine.begin() as conn:
        conn.execute(
            insert(projects)
            .values(name=project, domain=domain, source=source.stored())
            .on_conflict_do_update(index_elements=["name"], set_={"source": source.stored()})
        )


def describe(git: GitSource) -> str:
    """How a git source reads in a deployment's record."""
    return f"git {shown(git.url)}" + (f" {git.ref}" if git.ref else "")


def checked(git: GitSource) -> GitSource:
    """The source, if git may fetch it; `ProjectError` saying why not otherwise."""
    try:
        check_url(git.url)
        if git.ref:
            check_ref(git.ref)
    except GitError as err:
        raise ProjectError(str(err)) from None
    return git


def project_git(engine: sa.Engine, project: str) -> GitSource:
    """The repository and branch a project deploys from when nothing else is given."""
    source = source_of(engine, project)
    if not source.git_url:
        raise ProjectError(
            f"{project} has no repository: give a path or --git URL, or set one with "
            f"`slipway project set {project} --git URL`"
        )
    return checked(GitSource(url=source.git_url, ref=source.branch))
