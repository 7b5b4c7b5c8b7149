"""The rules of the API's fields, stated once for the validators and for the OpenAPI schema.

The validators say what is wrong in words a person acts on; the schema states the same rule
for clients and for schemathesis, which checks in tests that the two agree.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, WithJsonSchema

from slipway.names import validate_project_name

PROJECT_NAME = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
"""The DNS label `slipway.names.validate_project_name` checks, as the schema states it."""

COMMIT = r"^[0-9A-Za-z][0-9A-Za-z._/-]{0,199}$"

DIGEST = r"^[0-9a-f]{64}$"
"""A blob's name and a content upload's id: a sha256 in lowercase hex."""

_CHAR = r"[^/\\\x00-\x1f\x7f]"
_NOT_DOT = r"[^./\\\x00-\x1f\x7f]"
_SEGMENT = rf"(?:\.?{_NOT_DOT}{_CHAR}*|\.\.{_CHAR}+)"


def entry_path(depth: int | None = None) -> str:
    """A canonical relative path, `depth` segments at most: segments separated by one '/',
    none empty, '.' or '..', no control character or backslash
    (`content_manifest.check_path`)."""
    more = "*" if depth is None else f"{{0,{depth - 1}}}"
    return rf"^{_SEGMENT}(?:/{_SEGMENT}){more}$"


ENTRY_PATH = entry_path()

LINK_TARGET = r"^[^/\x00][^\x00]*$"
"""A link's target: relative, no NUL; where it leads is judged against the whole tree."""

_HEX = "[0-9a-f]"
_GROUPS = (4, 4, 4, 12)


def _prefix_pattern() -> str:
    """A start of a deployment id's canonical form, at least its first 8 digits."""
    tail = ""
    for width in reversed(_GROUPS):
        whole = f"{_HEX}{{{width}}}{tail}"
        tail = f"(?:-(?:{_HEX}{{0,{width - 1}}}|{whole}))?"
    return f"^{_HEX}{{8}}{tail}$"


ID_PREFIX = _prefix_pattern()
"""A deployment id's first characters in its canonical form (lowercase, with its hyphens),
8 or more: `ab12cd34`, `ab12cd34-56`."""

ENV_PAIR = r"^[^=]+="
"""NAME=VALUE, the name not empty."""


def _commit(value: str) -> str:
    if not re.fullmatch(COMMIT, value):
        raise ValueError("use 1-200 letters, digits and . _ / -, e.g. a git commit SHA")
    return value


ProjectName = Annotated[
    str,
    AfterValidator(validate_project_name),
    WithJsonSchema({"type": "string", "pattern": PROJECT_NAME, "minLength": 1, "maxLength": 63}),
]
Commit = Annotated[
    str,
    AfterValidator(_commit),
    WithJsonSchema({"type": "string", "pattern": COMMIT, "minLength": 1, "maxLength": 200}),
]
PREVIEW_NAME = r"^[a-z0-9](?:-?[a-z0-9])*$"
"""A preview's name (`slipway.names.validate_preview_name`): a DNS label without `--`. That
`<name>--<project>` fits in 63 characters depends on the project's name: a 422 `preview: `
(or, where a preview is looked up, a 404) says so."""
PreviewName = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=PREVIEW_NAME)]
Digest = Annotated[str, StringConstraints(pattern=DIGEST)]
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A POSIX environment variable name (`slipway.environment.NAME`); PORT and HOST are
Slipway's own, refused with 422 when given."""
EnvName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ENV_NAME)]
Env = Annotated[
    dict[EnvName, str],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": ENV_NAME, "minLength": 1, "maxLength": 255},
            "additionalProperties": {"type": "string"},
        }
    ),
]
EnvPair = Annotated[str, StringConstraints(min_length=2, max_length=65536, pattern=ENV_PAIR)]
