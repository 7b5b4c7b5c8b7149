"""The `[build]` and `[static]` sections of slipway.toml: how an upload's image is built, and
whether it is a static site whose files the build makes (see `appconfig`).

```toml
[build]
network = "none"              # where RUN steps connect; default: the server's build network
target = "app"                # the Dockerfile stage to build; default: the last
args = { NODE_ENV = "production" }  # build arguments: kept in the image's history, no secrets

[static]
from_image = "/app/dist"      # a static site: these files of the built image, served by Caddy
```
"""

import posixpath
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.settings import NETWORK_NAME

_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BuildConfig(BaseModel):
    """How the image is built. Whether `network` is allowed is the server's decision (see
    `Settings.build_network`); `args` are visible in the image's history, so never secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str | None = Field(default=None, pattern=NETWORK_NAME)
    target: str | None = Field(default=None, pattern=NETWORK_NAME)
    args: dict[str, str] = Field(default_factory=dict)

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ARG_NAME.match(name):
                raise ValueError(f"{name!r} is not a build argument name (letters, digits, _)")
            if "\x00" in text:
                raise ValueError(f"the value of {name} holds a NUL character")
        return value


class StaticConfig(BaseModel):
    """A static site built by the Dockerfile: the files at `from_image` in the built image are
    served by Caddy like an upload's, and no container runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_image: str = Field(max_length=1024)

    @field_validator("from_image")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = value.split("/")
        if not value.startswith("/") or ".." in parts or _CONTROL.search(value):
            raise ValueError(
                f"{value!r} must be an absolute path in the image without '..', e.g. /app/dist"
            )
        path = "/" + posixpath.normpath(value).lstrip("/")
        if path == "/":
            raise ValueError("the whole image is not a site: name the directory, e.g. /app/dist")
        return path
