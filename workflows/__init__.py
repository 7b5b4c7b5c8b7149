"""Temporal workflows: they decide and sequence; activities act. No I/O happens here."""
