"""Keeping what a process made at its start out of the garbage collector's full passes.

A full pass walks every object the collector tracks: in a worker that imported Temporal,
SQLAlchemy and the activities, some 170,000 of them, tens of milliseconds each time. A
deployment of a large tree makes tens of thousands of objects at once (a manifest's
entries), enough to set off such passes mid-phase. Frozen, the modules, classes and
functions made at start are never walked again, so a pass costs what the work itself made.
"""

import gc


def freeze_startup() -> None:
    """Move every object the collector tracks now into its permanent generation (nothing
    is freed or leaked: those objects live as long as the process anyway)."""
    gc.freeze()
