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


def settle() -> None:
    """Collect what starting left behind, then freeze every object still alive (modules,
    classes, clients, settings: what a long-lived process keeps until it stops). For a
    worker once it polls: its monitor and cleanup passes otherwise set off full collections
    that walk all of them again, which made an idle worker's CPU grow with the projects its
    passes look at. (The collection first costs tens of milliseconds, which a CLI command
    is spared by `freeze_startup`.)"""
    gc.collect()
    gc.freeze()
