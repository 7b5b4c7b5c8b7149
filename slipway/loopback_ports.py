"""Loopback ports: whether one is free to bind, the range apps get theirs from, and ports for
servers a process is about to start (the tests' and the benchmarks' own stacks).

A port that is free now can be taken before the server that was chosen for it binds it. The
kernel hands out ports of its ephemeral range to every outgoing connection and every bind
to port 0, so a port chosen there (by binding port 0, say) is the likeliest to go: a
`PortPool` chooses below that range, and away from the apps' ports, each port once."""

import errno
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

APP_PORTS = range(20000, 30000)
"""Where Slipway gives apps their ports on host networking."""

EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
"""The range the kernel takes a port from for outgoing connections and binds to port 0."""

PORT_FLOOR = 10000
"""The lowest port a pool gives: below it are the defaults of PostgreSQL, Temporal, Slipway's
own servers and whatever else a developer's machine runs."""


def bindable(port: int, *, over_time_wait: bool = False) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now; one this user may not bind counts
    as taken, and so does one a closed connection lingers on (TIME_WAIT) unless
    `over_time_wait` (servers that set SO_REUSEADDR, as most do, bind over it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if over_time_wait:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class PortPool:
    """Ports from `PORT_FLOOR` up to the ephemeral range, less `APP_PORTS`, split into `shares`
    (processes that run side by side and must never choose the same port, such as a test
    session's workers, each take their own `share`). Each port is given at most once, and
    only if it is bindable; the walk starts at a random place, so that pools of unrelated
    processes rarely meet either."""

    def __init__(self, share: int = 0, shares: int = 1) -> None:
        self._ports = self._walk(share, shares)

    @staticmethod
    def _walk(share: int, shares: int) -> Iterator[int]:
        ephemeral_low = int(EPHEMERAL_PORTS.read_text().split()[0])
        ports = [port for port in range(PORT_FLOOR, ephemeral_low) if port not in APP_PORTS]
        size = len(ports) // shares
        mine = ports[share * size : (share + 1) * size]
        start = secrets.randbelow(len(mine)) if mine else 0
        yield from mine[start:] + mine[:start]

    def take(self) -> int:
        """A port on 127.0.0.1 nobody listens on right now, never given before by this pool."""
        for port in self._ports:
            if bindable(port):
                return port
        raise RuntimeError(f"no free port left below the ephemeral range ({EPHEMERAL_PORTS})")
