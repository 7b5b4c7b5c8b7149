"""What every request shares: the settings, the database and a Temporal client."""

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, cast

import sqlalchemy as sa
from fastapi import Depends, Request
from temporalio.client import Client

from activities.adapters.content_manifest import Item
from slipway import analytics
from slipway.phases import Phase
from slipway.settings import Settings
from slipway.temporal import connect
from starter.http.config import ApiSettings

MEDIANS_TTL_SECONDS = 30.0
"""How long those medians are reused: every listed deployment that runs needs them."""


DESCRIBED_KEPT = 256
"""Uploads whose missing contents the process remembers (see `Described`)."""


class Described:
    """The contents each upload lacked when this process took its manifest (digest → the
    path and size the manifest gave it), so that deploying it soon after checks those
    alone: the others were there, with their sizes, a moment before. An upload described
    by another process, or long ago, is checked whole."""

    def __init__(self) -> None:
        self._lacking: OrderedDict[str, dict[str, tuple[str, int]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, upload_id: str, lacking: dict[str, tuple[str, int]]) -> None:
        with self._lock:
            self._lacking[upload_id] = lacking
            self._lacking.move_to_end(upload_id)
            while len(self._lacking) > DESCRIBED_KEPT:
                self._lacking.popitem(last=False)

    def lacking(self, upload_id: str) -> dict[str, tuple[str, int]] | None:
        """What the upload lacked when this process took it, or None if it did not."""
        with self._lock:
            return self._lacking.get(upload_id)


MANIFEST_ENTRIES_KEPT = 200_000
"""Entries of recent manifests the process keeps checked (see `Manifests`): a few large
sites' worth, some tens of MB at most."""


class Manifests:
    """The entries of the manifests this process checked and stored lately, by upload id,
    so that an upload described as changes to one of them (`POST /api/uploads/{base}/
    changes`) starts from entries already checked instead of parsing the stored manifest
    again. One described by another process, or long ago, is parsed and checked whole."""

    def __init__(self, kept_entries: int = MANIFEST_ENTRIES_KEPT) -> None:
        self._items: OrderedDict[str, tuple[Item, ...]] = OrderedDict()
        self._kept_entries = kept_entries
        self._entries = 0
        self._lock = threading.Lock()

    def keep(self, upload_id: str, items: tuple[Item, ...]) -> None:
        with self._lock:
            if upload_id in self._items:
                self._items.move_to_end(upload_id)
                return
            self._items[upload_id] = items
            self._entries += len(items)
            while self._entries > self._kept_entries and len(self._items) > 1:
                self._entries -= len(self._items.popitem(last=False)[1])

    def items(self, upload_id: str) -> tuple[Item, ...] | None:
        """The checked entries of the upload, or None if the process does not keep them."""
        with self._lock:
            found = self._items.get(upload_id)
            if found is not None:
                self._items.move_to_end(upload_id)
            return found


class UnavailableError(RuntimeError):
    """A component the request needs does not answer; the message names it."""


@dataclass
class Services:
    """One per app; a client passed in (as the tests do) is used as it is."""

    settings: Settings
    api: ApiSettings
    token: str
    engine: sa.Engine
    client: Client | None = None
    _connecting: asyncio.Lock = field(default_factory=asyncio.Lock)
    _medians: tuple[float, dict[Phase, float]] = (float("-inf"), {})
    described: Described = field(default_factory=Described)
    manifests: Manifests = field(default_factory=Manifests)

    async def temporal(self) -> Client:
        """The Temporal client, connected on first use, so the API starts and /healthz
        answers while Temporal is still coming up."""
        async with self._connecting:
            if self.client is None:
                try:
                    self.client = await connect(self.settings)
                except RuntimeError as err:
                    raise UnavailableError(
                        f"cannot reach Temporal at {self.settings.temporal_address}: {err}"
                    ) from None
        return self.client

    def medians(self) -> dict[Phase, float]:
        """Per-phase median durations of the last week, cached briefly."""
        made, found = self._medians
        if time.monotonic() - made > MEDIANS_TTL_SECONDS:
            found = analytics.recent_medians(self.engine)
            self._medians = (time.monotonic(), found)
        return found


def _services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


Shared = Annotated[Services, Depends(_services)]
"""A path operation's parameter for the app's services."""
