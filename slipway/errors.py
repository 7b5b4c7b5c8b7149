"""Failures that retrying cannot fix. The work raises them in plain terms; the activity layer
turns them into Temporal failures that are not retried, typed by `kind`."""


class PermanentError(Exception):
    """Something about the deployment itself is wrong: a retry would fail the same way."""

    kind = "Permanent"


class BadInputError(PermanentError):
    """What was asked cannot be done (a hostile or broken upload, a missing release, an
    invalid name); the message says what a person can do about it."""

    kind = "BadInput"


class UnhealthyError(PermanentError):
    """The release did not prove itself healthy; the message carries what was seen last."""

    kind = "Unhealthy"
