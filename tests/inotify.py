"""An inotify watch on a directory, as Traefik's file provider watches its own: what a test
sees here is each event that makes Traefik read every route again."""

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
WATCHED = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
WATCHED |= IN_DELETE
NAMES = {
    IN_MODIFY: "modify",
    IN_ATTRIB: "attrib",
    IN_CLOSE_WRITE: "close_write",
    IN_MOVED_FROM: "moved_from",
    IN_MOVED_TO: "moved_to",
    IN_CREATE: "create",
    IN_DELETE: "delete",
}
HEADER = struct.Struct("iIII")


class Watch:
    """An inotify watch on one directory, non-blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def events(self) -> list[tuple[str, str]]:
        """(event, file name) for each event since the last call."""
        found: list[tuple[str, str]] = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, mask, _, size = HEADER.unpack_from(data, offset)
                name = data[offset + HEADER.size : offset + HEADER.size + size].rstrip(b"\0")
                offset += HEADER.size + size
                found += [(n, name.decode()) for bit, n in NAMES.items() if mask & bit]


@contextmanager
def watching(directory: Path) -> Iterator[Watch]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        assert libc.inotify_add_watch(fd, str(directory).encode(), WATCHED) >= 0
        yield Watch(fd)
    finally:
        os.close(fd)
