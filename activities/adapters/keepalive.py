"""Plain-HTTP GETs to Traefik's entry point over kept-alive connections, for the monitor's
look at every project on every pass (and the bake window's looks). The standard library's
client costs a third of httpx's CPU per request (measured through Traefik: 0.11 ms against
0.35 ms), and the monitor's probes are most of what an idle worker spends its CPU on, once
per project per pass. Health checks, a few per deployment, keep the shared httpx client."""

import http.client
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from activities.adapters.http_client import TIMEOUT

BODY_LIMIT = 64 * 1024
"""Bytes of an answer read: a release marker or a health page is far smaller. A longer
answer is cut there (its connection closed, not reused)."""


class ProbeError(Exception):
    """The server did not answer: refused, reset, timed out or not HTTP."""


@dataclass(frozen=True)
class Answer:
    """A status and the beginning of the body."""

    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


KEPT = 16
"""Idle connections kept per server: as many as the monitor looks at projects at once, and
more."""

_IDLE: dict[str, list[http.client.HTTPConnection]] = {}
_IDLE_LOCK = threading.Lock()


def _take(base: str) -> tuple[http.client.HTTPConnection, bool]:
    """An idle connection to `base` (True: it served a request before) or a new one."""
    with _IDLE_LOCK:
        idle = _IDLE.get(base)
        if idle:
            return idle.pop(), True
    address = urlsplit(base)
    host = address.hostname or "127.0.0.1"
    return http.client.HTTPConnection(host, address.port, TIMEOUT), False


def _give_back(base: str, conn: http.client.HTTPConnection) -> None:
    with _IDLE_LOCK:
        idle = _IDLE.setdefault(base, [])
        if len(idle) < KEPT:
            idle.append(conn)
            return
    conn.close()


def get(base: str, path: str, host: str) -> Answer:
    """GET `path` from the plain-HTTP server at `base` (scheme, host and port) with this Host
    header. A kept connection the server closed in the meantime is opened again once. Safe
    to call from several threads: each request has a connection of its own."""
    while True:
        conn, reused = _take(base)
        try:
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            body = response.read(BODY_LIMIT)
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            closed = http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError
            if reused and isinstance(err, closed):
                continue
            raise ProbeError(type(err).__name__) from err
        if response.isclosed() and not response.will_close:
            _give_back(base, conn)
        else:
            conn.close()
        return Answer(response.status, body)
