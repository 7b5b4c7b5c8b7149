"""Slipway's shared core: the types, settings, names and records both sides of Temporal use."""
