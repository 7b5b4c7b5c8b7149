"""An app's own settings for its container: an optional `slipway.toml` at the upload's root,
and the Docker health check derived from it.

```toml
port = 8000                   # only if the app cannot listen on $PORT (see AppConfig.port)
memory = "256m"               # b, k, m, g (binary units, as Docker reads them)
cpus = 1.0
capabilities = ["NET_BIND_SERVICE"]

[health]
path = "/healthz"             # fetched on 127.0.0.1:<port> inside the container
interval = "2s"               # seconds as a number, or "500ms", "2s", "1m"
timeout = "3s"
retries = 3
start_period = "10s"
command = "test -f /tmp/ready" # replaces the HTTP check (run by /bin/sh in the image)
```

`[build]` and `[static]` (how the image is built; a static site it builds) are in
`build_config`.
"""

import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from activities.adapters.build_config import BuildConfig, StaticConfig

CONFIG_FILE = "slipway.toml"
"""Where an upload keeps its container settings, relative to its root."""

MAX_CONFIG_BYTES = 64 * 1024
"""A settings file larger than this is not a settings file."""

DEFAULT_MEMORY = 256 * 1024 * 1024
DEFAULT_CPUS = 1.0
MIN_MEMORY = 6 * 1024 * 1024
"""Docker refuses memory limits below 6 MiB."""

DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
"""Docker's default capabilities: apps run with all dropped and may ask back only these, never
one that Docker itself withholds (SYS_ADMIN, NET_ADMIN...)."""


class AppConfigError(ValueError):
    """slipway.toml cannot be used; the message names the setting and how to fix it."""


_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


def _memory(value: Any) -> Any:
    """'256m' → bytes. A bare number is refused: 512 bytes is never what was meant."""
    if isinstance(value, int | float):
        raise ValueError(f'give memory a unit, e.g. "{value}m" (b, k, m or g)')
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a size: use e.g. "256m" or "1g"')
        return int(float(match[1]) * _UNITS[match[2].lower()])
    return value


def _seconds(value: Any) -> Any:
    """A number of seconds, or a string like '500ms', '2s', '1m'."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration: use seconds (2) or "500ms", "2s", "1m"')
        return float(match[1]) * _DURATION_UNITS[match[2]]
    return value


Memory = Annotated[int, BeforeValidator(_memory), Field(ge=MIN_MEMORY)]
Seconds = Annotated[float, BeforeValidator(_seconds)]


class HealthConfig(BaseModel):
    """How Docker decides the app is healthy. The first check runs one `interval` after the
    start, so `interval` bounds how soon a deployment can switch; failures during
    `start_period` do not count, so a slow starter is not declared unhealthy early."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="/", max_length=1024)
    interval: Seconds = Field(default=2.0, ge=0.5, le=3600)
    timeout: Seconds = Field(default=3.0, ge=0.5, le=600)
    retries: int = Field(default=3, strict=True, ge=1, le=100)
    start_period: Seconds = Field(default=10.0, ge=0, le=3600)
    command: str | None = Field(default=None, min_length=1, max_length=4096)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(c.isspace() or ord(c) < 32 for c in value):
            raise ValueError(f"{value!r} must start with / and contain no spaces, e.g. /healthz")
        return value


class AppConfig(BaseModel):
    """An app's container settings, defaults filled in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=65535,
        description=(
            "The port the app listens on when it cannot read $PORT. Leave it out: Slipway then "
            "allocates a free loopback port and passes it in PORT, which lets the new version "
            "start beside the old one (a fixed port cannot, on host networking)."
        ),
    )
    memory: Memory = DEFAULT_MEMORY
    cpus: float = Field(default=DEFAULT_CPUS, strict=True, ge=0.01)
    capabilities: tuple[str, ...] = ()
    health: HealthConfig = HealthConfig()
    build: BuildConfig = BuildConfig()
    static: StaticConfig | None = None

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value: float) -> float:
        available = os.cpu_count() or 1
        if value > available:
            raise ValueError(f"{value} is more than this server's {available} CPUs")
        return value

    @field_validator("capabilities")
    @classmethod
    def _capabilities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = []
        for raw in value:
            name = raw.strip().upper().removeprefix("CAP_")
            if name not in DEFAULT_CAPABILITIES:
                raise ValueError(
                    f"{raw!r} cannot be granted: apps run with every capability dropped and may "
                    f"ask back only Docker's defaults ({', '.join(sorted(DEFAULT_CAPABILITIES))})"
                )
            names.append(name)
        return tuple(sorted(set(names)))


def _describe(err: ValidationError) -> str:
    """One line per problem, each naming the setting as it is written in the file."""
    lines = []
    for problem in err.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(file)"
        if problem["type"] == "extra_forbidden":
            sections: dict[str, type[BaseModel]] = {
                "health": HealthConfig,
                "build": BuildConfig,
                "static": StaticConfig,
            }
            known = ", ".join(
                [
                    *(name for name in AppConfig.model_fields if name not in sections),
                    *(f"{s}.{k}" for s, model in sections.items() for k in model.model_fields),
                ]
            )
            lines.append(f"{where}: unknown setting (known: {known})")
        else:
            value = problem["input"]
            shown = f" = {value!r}" if isinstance(value, str | int | float) else ""
            lines.append(f"{where}{shown}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def parse_app_config(text: str) -> AppConfig:
    """The settings in a slipway.toml's text; `AppConfigError` says what to change."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise AppConfigError(f"{CONFIG_FILE} is not valid TOML: {err}") from None
    try:
        return AppConfig.model_validate(data)
    except ValidationError as err:
        raise AppConfigError(f"{CONFIG_FILE}: {_describe(err)}") from None


def load_app_config(source: Path) -> AppConfig:
    """The upload's settings, or the defaults when it has no slipway.toml."""
    path = source / CONFIG_FILE
    if not path.exists() and not path.is_symlink():
        return AppConfig()
    if path.is_symlink() or not path.is_file():
        raise AppConfigError(f"{CONFIG_FILE} must be a regular file at the upload's root")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise AppConfigError(f"{CONFIG_FILE} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AppConfigError(f"{CONFIG_FILE} must be UTF-8 text") from None
    return parse_app_config(text)


def health_test(detected_type: str, config: AppConfig, port: int) -> list[str]:
    """The Docker HEALTHCHECK test for an app: the config's `command`, else an HTTP GET of
    `health.path` on the app's port from inside the container, with whichever of wget or
    curl the image has (CMD-SHELL: the image needs /bin/sh). An image with neither fails its
    check with a message saying what to do."""
    if detected_type == "static":
        raise ValueError("static sites are served by Caddy and have no container health check")
    if config.health.command:
        return ["CMD-SHELL", config.health.command]
    url = shlex.quote(f"http://127.0.0.1:{port}{config.health.path}")
    return [
        "CMD-SHELL",
        f"if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null {url}; "
        f"elif command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null {url}; "
        "else echo 'neither wget nor curl in the image: set [health] command in "
        f"{CONFIG_FILE}'; false; fi || exit 1",
    ]
