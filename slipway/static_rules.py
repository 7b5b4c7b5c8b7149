"""How a static release is served: the `[static]` rules of its slipway.toml (SPA fallback,
compression, redirects, headers), validated so that nothing a repository or upload writes
there can become configuration syntax, a placeholder, or a path outside the release.

Every value is checked against the narrow alphabet a URL path or an HTTP header field
needs; braces are refused everywhere, because Caddy would read `{...}` in a value as a
placeholder (`{env.X}`, `{file./etc/passwd}`) and fill it in from the server's own
environment and files. Validated rules are written into the release itself (see
`rules_path`), so they travel with it: whichever release a slot points at is served with
its own rules (see `static_server`).
"""

import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RULES_DIR = ".well-known/slipway/rules"
"""Where a static release keeps its rules, named by their digest: inside the reserved path
that an upload's own entries never reach."""

SPLAT = ":splat"
"""In a redirect's `to`: what a trailing `*` of its `from` matched."""

_PATH_CHARS = r"A-Za-z0-9._~!$&'()+,;=:@/\-"
_FROM = re.compile(rf"^/[{_PATH_CHARS}]*\*?$")
_PATTERN = re.compile(rf"^[/*][{_PATH_CHARS}*]*$")
_LOCAL_TO = re.compile(rf"^/(?!/)[{_PATH_CHARS}?#%]*$")
_REMOTE_TO = re.compile(rf"^https?://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/[{_PATH_CHARS}?#%]*)?$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7a|~]{0,4096}$")
"""Printable ASCII without `{`, `}`: a literal value, never a placeholder."""

FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-range",
        "keep-alive",
        "location",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Fields that frame the response or that Slipway sets itself (`Location` through
`redirects`): a rule setting one would break the response rather than describe it."""


def _no_dot_segments(value: str) -> None:
    """A path with `.` or `..` segments, or empty ones, names something other than it says."""
    segments = value.strip("*").split("/")[1:]
    if any(s in (".", "..") for s in segments) or "//" in value:
        raise ValueError(f"{value!r} holds '.', '..' or '//': write the path as it is served")


class Redirect(BaseModel):
    """One redirect: requests for `from` (exact, or every path under a prefix ending in `*`)
    answered with `status` and `to`, where `:splat` stands for what the `*` matched."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str = Field(alias="from", max_length=1024)
    to: str = Field(max_length=2048)
    status: Literal[301, 302, 307, 308] = 301

    @field_validator("from_")
    @classmethod
    def _from(cls, value: str) -> str:
        if not _FROM.match(value):
            raise ValueError(
                f"{value!r} is not a path to redirect: start with /, use letters, digits and "
                "._~!$&'()+,;=:@/- only, and * only at the end (e.g. /old or /blog/*)"
            )
        _no_dot_segments(value)
        if value.startswith("/.well-known/slipway"):
            raise ValueError(f"{value!r} is Slipway's own path and cannot be redirected")
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        if not (_LOCAL_TO.match(value) or _REMOTE_TO.match(value)):
            raise ValueError(
                f"{value!r} is not a redirect target: a path starting with a single / or an "
                "http(s):// URL, with no spaces, quotes, braces or backslashes"
            )
        if value.startswith("/" + SPLAT):
            raise ValueError(
                f"{value!r} would send a request for //host to another site: put a path "
                f"before {SPLAT}, e.g. /new/{SPLAT}"
            )
        return value

    @model_validator(mode="after")
    def _splat(self) -> "Redirect":
        if SPLAT in self.to and not self.from_.endswith("*"):
            raise ValueError(f"to uses {SPLAT} but from {self.from_!r} does not end with *")
        return self


class StaticRules(BaseModel):
    """How a static release is served beyond its files. Defaults: no SPA fallback, gzip and
    zstd compression, no redirects, no extra headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spa: bool = Field(default=False, strict=True)
    compress: bool = Field(default=True, strict=True)
    redirects: tuple[Redirect, ...] = ()
    headers: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for pattern, fields in value.items():
            if not _PATTERN.match(pattern) or len(pattern) > 1024:
                raise ValueError(
                    f"{pattern!r} is not a path pattern: start with / or *, use letters, "
                    "digits, ._~!$&'()+,;=:@/- and * (e.g. /assets/* or *.css)"
                )
            _no_dot_segments(pattern)
            for name, text in fields.items():
                if not _HEADER_NAME.match(name):
                    raise ValueError(f"{name!r} (for {pattern!r}) is not a header name")
                if name.lower() in FORBIDDEN_HEADERS:
                    raise ValueError(
                        f"{name!r} (for {pattern!r}) cannot be set by a rule: it frames the "
                        "response or is Slipway's own (use redirects for Location)"
                    )
                if not _HEADER_VALUE.match(text):
                    raise ValueError(
                        f"the value of {name!r} (for {pattern!r}) must be printable ASCII of "
                        "at most 4096 characters, without braces or line breaks"
                    )
        return value

    @property
    def digest(self) -> str:
        """A name for these rules that changes when they do: releases with the same rules
        share one set in the static server's configuration."""
        return hashlib.sha256(self.serialized().encode()).hexdigest()[:24]

    def serialized(self) -> str:
        """The rules as they are kept in a release (`from` spelled as in slipway.toml)."""
        return self.model_dump_json(by_alias=True)


DEFAULT_RULES = StaticRules()


def rules_path(rules: StaticRules) -> str:
    """Where in a release its rules are kept (relative to its root)."""
    return f"{RULES_DIR}/{rules.digest}.json"
