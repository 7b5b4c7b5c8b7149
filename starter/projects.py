"""A project's source settings: the git repository and branch it deploys from, with its
credentials and webhook secret sealed before anything records them."""

import secrets
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from slipway.models import GitSource
from slipway.names import validate_project_name
from slipway.project_sources import ProjectSource, checked, set_source, source_of
from slipway.secrets import load_key, seal, unseal
from slipway.settings import Settings


class SourceView(BaseModel):
    """A project's source as people see it: never a secret, only whether one is set."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    project: str
    git_url: str | None
    branch: str | None
    token: bool
    ssh_key: bool
    webhook_secret: bool
    notify_url: str | None


def set_git(
    engine: sa.Engine,
    settings: Settings,
    project: str,
    url: str,
    *,
    branch: str | None = None,
    user: str | None = None,
    token: str | None = None,
    ssh_key_file: Path | None = None,
    webhook_secret: str | None = None,
) -> str | None:
    """Remember the project's repository, branch and credentials (sealed). Returns the
    webhook secret when one was generated (shown once, never again); a secret already set
    is kept unless a new one is given."""
    validate_project_name(project)
    checked(GitSource(url=url, ref=branch))
    key = load_key(settings)
    before = source_of(engine, project)
    generated = None
    if webhook_secret is None and before.sealed_webhook_secret is None:
        webhook_secret = generated = secrets.token_urlsafe(32)
    sealed = seal(
        {
            name: value
            for name, value in (
                ("token", token),
                ("sshKey", ssh_key_file.read_text() if ssh_key_file else None),
                ("webhook", webhook_secret),
            )
            if value
        },
        key,
    )
    source = ProjectSource(
        git_url=url,
        branch=branch,
        git_user=user,
        sealed_token=sealed.get("token", before.sealed_token),
        sealed_ssh_key=sealed.get("sshKey", before.sealed_ssh_key),
        sealed_webhook_secret=sealed.get("webhook", before.sealed_webhook_secret),
    )
    set_source(engine, project, settings.project_host(project), source)
    return generated


def set_notify(engine: sa.Engine, settings: Settings, project: str, url: str | None) -> None:
    """Where the project's deployments announce their end (None: the server's webhook)."""
    validate_project_name(project)
    source = source_of(engine, project).model_copy(update={"notify_url": url})
    set_source(engine, project, settings.project_host(project), source)


def show(engine: sa.Engine, project: str) -> SourceView:
    """The project's source, secrets only as whether they are set."""
    source = source_of(engine, validate_project_name(project))
    return SourceView(
        project=project,
        git_url=source.git_url,
        branch=source.branch,
        token=source.sealed_token is not None,
        ssh_key=source.sealed_ssh_key is not None,
        webhook_secret=source.sealed_webhook_secret is not None,
        notify_url=source.notify_url,
    )


def webhook_secret(engine: sa.Engine, settings: Settings, project: str) -> str | None:
    """The project's webhook secret, unsealed, for checking a push's signature."""
    sealed = source_of(engine, project).sealed_webhook_secret
    if sealed is None:
        return None
    return unseal({"webhook": sealed}, load_key(settings))["webhook"]
