"""What every request shares: the settings, the database and a Temporal client."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, cast

import sqlalchemy as sa
from fastapi import Depends, Request
from temporalio.client import Client

from slipway import analytics
from slipway.phases import Phase
from slipway.settings import Settings
from slipway.temporal import connect
from starter.http.config import ApiSettings

MEDIANS_TTL_SECONDS = 30.0
"""How long those medians are reused: every listed deployment that runs needs them."""


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
