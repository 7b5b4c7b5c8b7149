"""Alembic environment: runs on the connection `slipway.database.migrate` hands over."""

from alembic import context

from slipway.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
