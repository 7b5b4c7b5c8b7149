"""A project's environment variables as the CLI and the API change and list them: each
change a new version (`slipway.env_versions`), values sealed before anything records them
and shown back only masked."""

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from temporalio.client import Client

from slipway import env_versions
from slipway.env_versions import EnvVersion
from slipway.environment import mask, parse_dotenv
from slipway.names import validate_project_name
from slipway.secrets import load_key, unseal
from slipway.settings import Settings
from starter import api


class EnvVariable(BaseModel):
    """One variable: its name, and its value masked."""

    name: str
    value: str = Field(description="Masked: its first 2 characters and ****, or **** alone.")


class EnvListing(BaseModel):
    """The project's current version and its variables, masked."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    project: str
    version: int = Field(description="0 while the project has never set a variable.")
    variables: list[EnvVariable]


class EnvChange(BaseModel):
    """A version just made, and the deployment started with it when one was asked for."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    version: EnvVersion
    deployment_id: str | None = Field(
        default=None, description="The deployment started with it (with redeploy)."
    )
    redeploy_error: str | None = Field(
        default=None, description="Why no deployment could start, when one was asked for."
    )


def change(
    engine: sa.Engine,
    settings: Settings,
    project: str,
    values: dict[str, str] | None = None,
    unset: list[str] | None = None,
) -> EnvVersion:
    """Set `values` and remove `unset` as one new version of the project's environment."""
    return env_versions.change(
        engine,
        validate_project_name(project),
        settings.project_host(project),
        load_key(settings),
        settings.env_limits,
        values=values or {},
        unset=unset or [],
    )


def import_dotenv(engine: sa.Engine, settings: Settings, project: str, text: str) -> EnvVersion:
    """Set every variable of a `.env` file's text (see `environment.parse_dotenv`) as one new
    version; variables the file does not name stay as they are."""
    return change(engine, settings, project, values=parse_dotenv(text))


def listing(engine: sa.Engine, settings: Settings, project: str) -> EnvListing:
    """The project's current variables, their values masked."""
    version, sealed = env_versions.current(engine, validate_project_name(project))
    opened = unseal(sealed, load_key(settings))
    return EnvListing(
        project=project,
        version=version,
        variables=[EnvVariable(name=name, value=mask(opened[name])) for name in sorted(opened)],
    )


async def applied(
    client: Callable[[], Awaitable[Client]],
    settings: Settings,
    engine: sa.Engine,
    version: EnvVersion,
    redeploy: bool,
) -> EnvChange:
    """The change as answered: with `redeploy`, the deployment started with the new version
    (see `api.redeploy`), or why none could start. The version is kept either way."""
    if not redeploy:
        return EnvChange(version=version)
    try:
        started = await api.redeploy(await client(), settings, engine, version.project)
    except api.DeploymentError as err:
        return EnvChange(version=version, redeploy_error=str(err))
    return EnvChange(version=version, deployment_id=started)
