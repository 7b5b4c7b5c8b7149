"""Connections to PostgreSQL and schema migration."""

from functools import cache
from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

_MIGRATION_LOCK = 0x534C_5750  # "SLWP": one migrator at a time across workers.


@cache
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL; connections are checked before use so a restarted server
    costs one retry, not a broken pool."""
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def migrate(url: str) -> None:
    """Bring the schema to the newest revision; safe when several workers start at once."""
    engine = engine_for(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            config = Config()
            config.set_main_option("script_location", str(resources.files("migrations")))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            conn.commit()
