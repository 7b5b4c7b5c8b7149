"""What blocking work shares with the heartbeat loop that runs it: its resumable details,
and a flag it checks to stop early. The loop itself belongs to the activity layer."""

import threading
from typing import Any


class Cancelled(Exception):
    """Raised inside blocking work when its activity was cancelled."""


class Beat:
    """The work's side of a heartbeat."""

    def __init__(self, details: Any = None) -> None:
        self.details: Any = details
        self._cancelled = threading.Event()

    def check(self) -> None:
        """Stop the work here if the activity was cancelled."""
        if self._cancelled.is_set():
            raise Cancelled

    def cancel(self) -> None:
        self._cancelled.set()
