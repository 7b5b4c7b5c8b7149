"""A project's source settings: the git repository and branch it deploys from, with its
credentials and webhook secret sealed before anything records them."""

import secrets

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from slipway import previews
from slipway.models import GitSource
from slipway.names import validate_project_name
from slipway.project_sources import ProjectError, checked, set_source, source_of
from slipway.secrets import load_key, seal, unseal
from slipway.settings import Settings
from slipway.settings import registry_auth as parse_registry_auth


class SourceView(BaseModel):
    """A project's source as people see it: never a secret, only whether one is set."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    project: str
    git_url: str | None
    branch: str | None
    token: bool
    ssh_key: bool
    webhook_secret: bool
    registry_auth: bool
    notify_url: str | None
    previews: bool = False


def set_git(
    engine: sa.Engine,
    settings: Settings,
    project: str,
    url: str,
    *,
    branch: str | None = None,
    user: str | None = None,
    token: str | None = None,
    ssh_key: str | None = None,
    webhook_secret: str | None = None,
    registry_auth: str | None = None,
) -> str | None:
    """Remember the project's repository, branch and credentials (sealed); what is not given
    (a token, a key, registry credentials, the notification webhook) is kept as it was.
    Returns the webhook secret when one was generated (shown once, never again)."""
    validate_project_name(project)
    try:
        previews.check_site(engine, project, "")
    except previews.SiteClashError as err:
        raise ProjectError(str(err)) from None
    checked(GitSource(url=url, ref=branch))
    if registry_auth is not None:
        try:
            parse_registry_auth(registry_auth, "the registry credentials")
        except ValueError as err:
            raise ProjectError(str(err)) from None
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
                ("sshKey", ssh_key),
                ("webhook", webhook_secret),
                ("registry", registry_auth),
            )
            if value
        },
        key,
    )
    source = before.model_copy(
        update={
            "git_url": url,
            "branch": branch,
            "git_user": user,
            "sealed_token": sealed.get("token", before.sealed_token),
            "sealed_ssh_key": sealed.get("sshKey", before.sealed_ssh_key),
            "sealed_webhook_secret": sealed.get("webhook", before.sealed_webhook_secret),
            "sealed_registry_auth": sealed.get("registry", before.sealed_registry_auth),
        }
    )
    set_source(engine, project, settings.project_host(project), source)
    return generated


GIT_URL = r"^((https|ssh|git|file)://\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$"
"""What a repository URL may look like; what git then accepts is checked when it is set."""


class SourceSettings(BaseModel):
    """A project's repository and how to open it; secrets are sealed when they arrive."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    git_url: str = Field(
        min_length=1,
        max_length=2000,
        pattern=GIT_URL,
        description="https://, ssh://, git://, file:// or user@host:path.",
    )
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    git_user: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="User name sent with the token: no control characters.",
    )
    git_token: str | None = Field(default=None, min_length=1, max_length=16384)
    ssh_key: str | None = Field(default=None, min_length=1, max_length=65536)
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=255)
    registry_auth: str | None = Field(
        default=None,
        min_length=2,
        max_length=65536,
        description='JSON {"<registry>": {"username": ..., "password": ...}} for base images.',
    )
    notify_url: str | None = Field(
        default=None, min_length=1, max_length=2000, pattern=r"^https?://"
    )


def apply(
    engine: sa.Engine, settings: Settings, project: str, change: SourceSettings
) -> str | None:
    """Set the project's source as `change` says (see `set_git`, `set_notify`); returns the
    webhook secret when one was generated."""
    generated = set_git(
        engine,
        settings,
        project,
        change.git_url,
        branch=change.branch,
        user=change.git_user,
        token=change.git_token,
        ssh_key=change.ssh_key,
        webhook_secret=change.webhook_secret,
        registry_auth=change.registry_auth,
    )
    if change.notify_url is not None:
        set_notify(engine, settings, project, change.notify_url)
    return generated


def set_notify(engine: sa.Engine, settings: Settings, project: str, url: str | None) -> None:
    """Where the project's deployments announce their end (None: the server's webhook)."""
    validate_project_name(project)
    source = source_of(engine, project).model_copy(update={"notify_url": url})
    set_source(engine, project, settings.project_host(project), source)


def set_previews(engine: sa.Engine, settings: Settings, project: str, enabled: bool) -> None:
    """Whether a push to a branch other than the project's production branch deploys that
    branch's preview (and deleting the branch removes it)."""
    validate_project_name(project)
    source = source_of(engine, project).model_copy(update={"previews": enabled})
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
        registry_auth=source.sealed_registry_auth is not None,
        notify_url=source.notify_url,
        previews=source.previews,
    )


def webhook_secret(engine: sa.Engine, settings: Settings, project: str) -> str | None:
    """The project's webhook secret, unsealed, for checking a push's signature."""
    sealed = source_of(engine, project).sealed_webhook_secret
    if sealed is None:
        return None
    return unseal({"webhook": sealed}, load_key(settings))["webhook"]
