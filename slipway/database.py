"""Connections to PostgreSQL and schema migration."""

from functools import cache
from importlib import resources

import sqlalchemy as sa

_MIGRATION_LOCK = 0x534C_5750  # "SLWP": one migrator at a time across workers.


@cache
def engine_for(url: str, *, checked: bool = True) -> sa.Engine:
    """One pooled engine per URL. A `checked` engine tests each connection before use (a
    round trip), so a restarted server costs a caller nothing; the worker's engine is not
    checked: a dead connection fails its activity, the pool is discarded, and the retry
    finds a fresh one."""
    return sa.create_engine(url, pool_pre_ping=checked, pool_size=5, max_overflow=10)


def migrate(url: str) -> None:
    """Bring the schema to the newest revision; safe when several workers start at once.
    Alembic is imported here, not with the module: whatever only connects starts without it."""
    from alembic import command
    from alembic.config import Config

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
