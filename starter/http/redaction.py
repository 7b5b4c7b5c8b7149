"""Keeps the API token out of the server's log. The page's link carries it once as `?token=`,
and uvicorn logs every request line with its query: the access log, and the error log for
WebSocket attempts. A filter on those loggers masks the value before any handler sees it."""

import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

PARAMETER = "token"
MASK = "***"
LOGGERS = ("uvicorn.access", "uvicorn.error")

_QUERY = re.compile(r"\?([^\s\"'#]*)")
"""A query in a request line or URL: from `?` to the end of the target."""


def _masked(pair: str) -> str:
    name, _, _ = pair.partition("=")
    # Compared as the server reads it, and in any case: `?Token=` is a token too.
    return f"{name}={MASK}" if unquote_plus(name).strip().lower() == PARAMETER else pair


def redact(text: str) -> str:
    """`text` with the value of every `token` query parameter replaced by `***`."""
    return _QUERY.sub(lambda found: "?" + "&".join(map(_masked, found[1].split("&"))), text)


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class TokenRedaction(logging.Filter):
    """Masks `?token=` in a record's message and arguments; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(map(_redacted, record.args))
        elif isinstance(record.args, Mapping):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


FILTER = TokenRedaction()


def install() -> None:
    """Put the filter on uvicorn's loggers (once, however often it is called). A filter on
    the logger rather than on a handler covers every handler, and uvicorn's logging setup
    replaces handlers but keeps filters."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(FILTER)
