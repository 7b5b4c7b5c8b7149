"""Temporal activities in three floors: here only the shells (each activity a few lines that
record its transition and call its phase), `phases/` with one module per phase, `upkeep/` for
cleanup and probes, and `adapters/` beneath them all."""
