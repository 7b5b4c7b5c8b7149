"""Alembic migrations of Slipway's schema, applied by the worker at start and by
`slipway db migrate`."""
