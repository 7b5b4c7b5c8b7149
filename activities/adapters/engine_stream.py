"""A Docker Engine stream (a build's or a pull's output) read on a thread of its own, so that a
cancellation reaches the work at once rather than at the engine's next output, which a
`RUN sleep 600` may not give for minutes. Leaving early shuts the connection down, and the
engine abandons a build or pull whose client has gone."""

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import docker

POLL_SECONDS = 0.2
"""How often the caller's `check` runs while the engine says nothing."""

Chunk = dict[str, Any]
"""One decoded JSON message of the engine's stream."""


class EngineStream:
    """`with EngineStream(client, call, check) as chunks:` iterates what `call()` yields, calling
    `check` between chunks and every `POLL_SECONDS` in between; an exception from `check` (or
    from the caller's loop) shuts the connection and ends the reader before it propagates.

    `call` must make its one request with `client`: the response is caught by a requests hook
    on `client.api` (for that thread only), which is what gives the socket to shut down."""

    def __init__(
        self,
        client: docker.DockerClient,
        call: Callable[[], Iterable[Chunk]],
        check: Callable[[], None],
    ) -> None:
        self.client = client
        self.call = call
        self.check = check
        self.chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, name="docker-stream", daemon=True)
        self.lock = threading.Lock()
        self.response: Any = None
        self.stopping = False
        self.ended = False

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is self.thread:
            with self.lock:
                self.response = response
                if self.stopping:
                    _shut(response)
        return response

    def _read(self) -> None:
        try:
            for chunk in self.call():
                if self.stopping:
                    return
                self.chunks.put(("chunk", chunk))
            self.chunks.put(("end", None))
        except Exception as err:
            self.chunks.put(("error", err))

    def _iterate(self) -> Iterator[Chunk]:
        while True:
            self.check()
            try:
                kind, value = self.chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if kind == "end":
                self.ended = True
                return
            if kind == "error":
                self.ended = True
                raise value
            yield value

    def __enter__(self) -> Iterator[Chunk]:
        self.client.api.hooks["response"].append(self._hook)
        self.thread.start()
        return self._iterate()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self.ended:
            with self.lock:
                self.stopping = True
                if self.response is not None:
                    _shut(self.response)
        self.thread.join()
        self.client.api.hooks["response"].remove(self._hook)


def _shut(response: Any) -> None:
    """Shut the response's socket down: a read blocked on it in another thread returns at once
    (closing the file alone would leave it blocked)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
