"""Caddy's running configuration kept equal to the rule sets of the kept releases (see
`slipway.static_server`): written to the file Caddy starts with, then loaded into the
running Caddy through its admin socket, which reloads gracefully and does nothing at all
when the configuration is unchanged."""

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from slipway.settings import Settings
from slipway.static_server import admin_socket, config_file, write_config


class StaticServerError(RuntimeError):
    """The running Caddy did not take its configuration; a retry may find it back."""


def load_rules(settings: Settings) -> None:
    """Bring Caddy's configuration up to date with the rule sets on disk.

    Idempotent: the configuration derives from what is on disk alone, and Caddy leaves an
    unchanged one as it is. Under a lock per server, so that two deployments' loads cannot
    cross and leave out the rules of the one that wrote its release first. When no Caddy of
    this home is listening (its socket is not there), the file is what it will start with.
    """
    socket = admin_socket(settings)
    lock = config_file(settings.home).with_name("load.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lock):
        config = write_config(settings)
        if not socket.exists():
            return
        transport = httpx.HTTPTransport(uds=str(socket))
        try:
            with httpx.Client(transport=transport, timeout=30.0) as client:
                answer = client.post(
                    "http://127.0.0.1/load",
                    content=json.dumps(config),
                    headers={"Content-Type": "application/json"},
                )
        except httpx.HTTPError as err:
            raise StaticServerError(f"Caddy's admin socket {socket} did not answer: {err}") from err
        if answer.status_code != 200:
            raise StaticServerError(
                f"Caddy refused its configuration ({answer.status_code}): {answer.text[:500]}"
            )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (a file on this server), held for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
