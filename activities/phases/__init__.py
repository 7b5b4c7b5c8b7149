"""One module per deployment phase, named after it: the phase's work, over the adapters.
Nothing here knows Temporal or the database; bad input is a `slipway.errors.BadInputError`."""
