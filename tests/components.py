"""The real components the tests run against, started by the tests themselves."""

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from slipway.settings import Settings
from slipway.stack import components, credentials, postgres
from slipway.stack.process import Service


def in_ci() -> bool:
    """CI must fail, never skip, when a component is missing."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, why: str) -> None:
    """Skip outside CI when a component is absent, saying why; fail in CI."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: a missing component is a failure)")
    pytest.skip(why)


@contextmanager
def own_temp_dir(prefix: str) -> Iterator[Path]:
    """A temp dir under the system's temp root, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_postgres(root: Path) -> tuple[Service, str]:
    """A fresh embedded PostgreSQL on a free port, its password in `root`; returns it and
    its URL (with the password)."""
    port = free_port()
    password_file = root / "postgres.password"
    service = postgres.postgres_service(
        root / "postgres", password_file, port, root / "logs" / "postgres.log"
    )
    service.start()
    service.wait_ready()
    return service, credentials.url(port, credentials.password(password_file))


def web_servers(settings: Settings) -> list[Service]:
    """Caddy and Traefik for `settings`, started and answering."""
    started = [components.caddy(settings), components.traefik(settings)]
    for service in started:
        service.start()
        service.wait_ready()
    return started
