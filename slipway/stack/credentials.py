"""The embedded PostgreSQL's password and URL: light enough for the settings to import (the
server itself, and psycopg, stay in `postgres`)."""

import secrets
from pathlib import Path
from urllib.parse import quote

from slipway.private_files import private_file

_URL = "postgresql://postgres:{}@127.0.0.1:{}/postgres"

__all__ = ["password", "shown_url", "url"]


def password(path: Path) -> str:
    """The superuser's password kept in `path` (owner-only), made on first use; whoever
    comes first (the stack, or a CLI computing the URL) makes it, and every start of the
    server sets it (see `_secure`)."""
    return private_file(path, lambda: secrets.token_urlsafe(32).encode()).decode()


def url(port: int, secret: str) -> str:
    """The URL of the embedded server on `port`, with its password."""
    return _URL.format(quote(secret, safe=""), port)


def shown_url(port: int) -> str:
    """The URL as printed: the password masked, so no terminal or log carries it."""
    return _URL.format("***", port)
