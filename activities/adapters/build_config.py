"""The `[build]` and `[static]` sections of slipway.toml: how an upload's image is built, and
whether it is a static site whose files the build makes (see `appconfig`).

```toml
[build]
network = "none"              # where RUN steps connect; default: the server's build network
target = "app"                # the Dockerfile stage to build; default: the last
args = { NODE_ENV = "production" }  # build arguments: kept in the image's history, no secrets

[static]
from_image = "/app/dist"      # a static site: these files of the built image, served by Caddy
spa = true                    # and how it is served: see `slipway.static_rules` and
compress = true               # docs/static-sites.md (redirects, headers)
```
"""

import posixpath
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.settings import NETWORK_NAME
from slipway.static_rules import StaticRules

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


class StaticConfig(StaticRules):
    """A static site's settings: how it is served (`StaticRules`) and, for a site built by
    the Dockerfile, `from_image`: the files at that path in the built image are served by
    Caddy like an upload's, and no container runs."""

    from_image: str | None = Field(default=None, max_length=1024)

    @property
    def rules(self) -> StaticRules:
        """How the site is served, without where its files come from."""
        return StaticRules.model_validate(self.model_dump(exclude={"from_image"}))

    @field_validator("from_image")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = value.split("/")
        if not value.startswith("/") or ".." in parts or _CONTROL.search(value):
            raise ValueError(
                f"{value!r} must be an absolute path in the image without '..', e.g. /app/dist"
            )
        path = "/" + posixpath.normpath(value).lstrip("/")
        if path == "/":
            raise ValueError("the whole image is not a site: name the directory, e.g. /app/dist")
        return path
