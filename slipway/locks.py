"""PostgreSQL advisory locks: work that must happen once across workers and servers."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def try_lock(conn: sa.Connection, name: str) -> bool:
    """Take the session-level lock `name` on `conn` if nobody holds it."""
    held = conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name})
    conn.commit()
    return bool(held.scalar())


def unlock(conn: sa.Connection, name: str) -> None:
    """Release a lock `try_lock` took on the same connection."""
    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
    conn.commit()


@contextmanager
def advisory_lock(engine: sa.Engine, name: str) -> Iterator[bool]:
    """Yield whether this session holds the lock `name`; it is released when the block ends,
    or by PostgreSQL when the worker's connection dies with it."""
    with engine.connect() as conn:
        held = try_lock(conn, name)
        try:
            yield held
        finally:
            if held:
                unlock(conn, name)
