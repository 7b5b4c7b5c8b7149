"""Before the embedded stack starts: its home is not already another stack's, and none of
its ports is taken. A second stack on the same home or ports would otherwise see the first
one's services answer its readiness probes, then die."""

import fcntl
import os
from pathlib import Path
from typing import IO

from slipway.loopback_ports import bindable
from slipway.settings import Settings


class ClaimError(RuntimeError):
    """The home or a port is someone else's; the message says which and what to do."""


def claim_home(home: Path) -> IO[str]:
    """Hold the home's lock for as long as the returned file stays open."""
    home.mkdir(parents=True, exist_ok=True)
    lock = (home / "stack.lock").open("a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise ClaimError(
            f"another embedded stack (pid {holder}) runs on {home}: stop it, or give this one "
            "its own SLIPWAY_HOME"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def check_ports(ports: dict[int, str]) -> None:
    """Refuse to start when any of the stack's ports (port: what and its setting) is taken."""
    taken = [
        f"{port} ({what})"
        for port, what in sorted(ports.items())
        if not bindable(port, over_time_wait=True)
    ]
    if taken:
        raise ClaimError(
            f"port {', '.join(taken)} {'is' if len(taken) == 1 else 'are'} taken by another "
            "program on 127.0.0.1: stop it, or set the port"
        )


def stack_ports(settings: Settings, temporal: int) -> dict[int, str]:
    """Every port the embedded stack listens on, with its setting's name."""
    ports = {
        temporal: "Temporal, SLIPWAY_TEMPORAL_ADDRESS",
        settings.temporal_ui_port: "Temporal UI, SLIPWAY_TEMPORAL_UI_PORT",
        settings.http_port: "Traefik, SLIPWAY_HTTP_PORT",
        settings.candidate_port: "Traefik's candidate entry point, SLIPWAY_CANDIDATE_PORT",
        settings.https_port: "Traefik's HTTPS, SLIPWAY_HTTPS_PORT",
        settings.traefik_admin_port: "Traefik's ping, SLIPWAY_TRAEFIK_ADMIN_PORT",
        settings.static_port: "Caddy, SLIPWAY_STATIC_PORT",
    }
    if settings.database_url is None:
        ports[settings.postgres_port] = "PostgreSQL, SLIPWAY_POSTGRES_PORT"
    if settings.metrics_port:
        ports[settings.metrics_port] = "the worker's metrics, SLIPWAY_METRICS_PORT"
    return ports
