"""One HTTP client per worker process for asking Traefik how a release answers: health
checks and route waits share its connection pool and its one TLS context, instead of
building both for every probe (building the context costs more than the probe itself).
httpx's client is safe to share between the activity threads. The monitor's and the bake
window's looks, once per project per pass, go through `keepalive` instead."""

import functools

import httpx

TIMEOUT = 5.0
"""Seconds one request to Traefik may take."""


@functools.cache
def shared() -> httpx.Client:
    """The process's client for plain-HTTP requests to Traefik's entry point."""
    return httpx.Client(
        timeout=TIMEOUT, limits=httpx.Limits(max_connections=64, max_keepalive_connections=16)
    )
