"""Readiness probes of the stack's services, all on loopback."""

import socket

import httpx


def tcp_open(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """True if `url` answers 2xx."""
    try:
        return httpx.get(url, timeout=1.0).is_success
    except httpx.HTTPError:
        return False
