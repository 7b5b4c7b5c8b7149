"""Settings of the HTTP API, from `SLIPWAY_API_*` environment variables."""

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from slipway.private_files import private_file
from slipway.settings import Settings


class ApiSettings(BaseSettings):
    """Where the API listens and what it accepts; loopback only by default."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_API_", extra="ignore")

    token: SecretStr | None = Field(
        default=None, description="The bearer token; unset means one kept in <home>/api.token."
    )
    host: str = "127.0.0.1"
    port: int = 3001
    max_hook_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest webhook body accepted, in bytes."
    )
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="Largest upload accepted, in bytes."
    )
    page_actions: bool = Field(
        default=True,
        description="The page's session may redeploy, roll back, cancel and resume (with a "
        "CSRF token); false makes it read only.",
    )
    session_hours: float = Field(
        default=12,
        gt=0,
        description="How long the page's session lasts once its link has been opened.",
    )


def token_file(settings: Settings) -> Path:
    """Where the generated token is kept."""
    return settings.home / "api.token"


def resolve_token(settings: Settings, api: ApiSettings) -> str:
    """The configured token, else the one kept under the home, made on first use (readable by
    its owner only) so that a restart keeps the links people hold."""
    if api.token is not None:
        return api.token.get_secret_value()
    return private_file(token_file(settings), lambda: secrets.token_urlsafe(32).encode()).decode()
