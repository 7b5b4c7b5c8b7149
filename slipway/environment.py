"""A project's environment variables as people give them: POSIX names, values within the
server's limits, `.env` files read line by line, and values shown masked. Nothing here
stores or seals a value (`slipway.env_versions` does); it only says whether one may be."""

import re
from collections.abc import Iterable, Mapping

from slipway.limits import EnvLimits, LimitError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A POSIX environment variable name: letters, digits and underscores, not starting with a
digit."""

RESERVED = frozenset({"PORT", "HOST"})
"""Set by Slipway on every container (where the app listens), so a project cannot."""

SHOWN_PREFIX = 2
"""Characters of a value `mask` shows, for values long enough to keep the rest hidden."""

MASKED_BELOW = 12
"""Values shorter than this are masked whole: two characters of a short value say too much."""


class EnvError(ValueError):
    """A variable cannot be set as given; the message says which and why."""


def check_name(name: str) -> str:
    """The name, if it is a POSIX name a project may set."""
    if not NAME.fullmatch(name):
        raise EnvError(
            f"invalid variable name {name[:80]!r}: use letters, digits and _, "
            "not starting with a digit (e.g. DATABASE_URL)"
        )
    if name in RESERVED:
        raise EnvError(f"{name} is set by Slipway on every container: choose another name")
    return name


def check(values: Mapping[str, str], limits: EnvLimits) -> None:
    """Refuse a whole environment with a bad name or past a limit."""
    for name in values:
        check_name(name)
    try:
        limits.check(values)
    except LimitError as err:
        raise EnvError(str(err)) from None


def pairs(given: Iterable[str]) -> dict[str, str]:
    """`NAME=VALUE` arguments (the value may hold `=` and be empty), names checked."""
    values: dict[str, str] = {}
    for pair in given:
        name, sep, value = pair.partition("=")
        if not sep:
            raise EnvError(f"invalid entry {name[:80]!r}: use NAME=VALUE")
        values[check_name(name)] = value
    return values


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a `.env` file: `NAME=VALUE` lines, optionally after `export `;
    blank lines and `#` comments skipped; a value in single quotes taken as written, one in
    double quotes with \\n, \\t, \\r, \\", \\$ and \\\\ escapes; an unquoted value up to a ` #`
    comment, trimmed. A line that is none of these is refused by its number."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        name, sep, rest = line.partition("=")
        name = name.strip()
        if not sep:
            raise EnvError(f"line {number}: expected NAME=VALUE")
        try:
            check_name(name)
            values[name] = _value(rest.strip())
        except EnvError as err:
            raise EnvError(f"line {number}: {err}") from None
    return values


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _value(rest: str) -> str:
    """One value as written after the `=`."""
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0:
            raise EnvError("a single quote is not closed on its line")
        _only_comment(rest[end + 1 :])
        return rest[1:end]
    if rest[:1] == '"':
        out: list[str] = []
        index = 1
        while index < len(rest):
            char = rest[index]
            if char == "\\" and index + 1 < len(rest):
                out.append(_ESCAPES.get(rest[index + 1], "\\" + rest[index + 1]))
                index += 2
                continue
            if char == '"':
                _only_comment(rest[index + 1 :])
                return "".join(out)
            out.append(char)
            index += 1
        raise EnvError("a double quote is not closed on its line")
    comment = re.search(r"\s#", rest)
    return (rest[: comment.start()] if comment else rest).strip()


def _only_comment(after: str) -> None:
    """What follows a closing quote: nothing, or a comment."""
    after = after.strip()
    if after and not after.startswith("#"):
        raise EnvError(f"unexpected {after[:40]!r} after the closing quote")


def mask(value: str) -> str:
    """A value as `env ls` shows it: its first two characters and `****` when it is long
    enough, else `****` alone; never its length."""
    if len(value) < MASKED_BELOW:
        return "****"
    return value[:SHOWN_PREFIX] + "****"
