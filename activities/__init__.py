"""Temporal activities: each does one phase's real work and records its transition."""
