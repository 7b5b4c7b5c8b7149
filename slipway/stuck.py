"""One page of the stuck listing, as the HTTP API and the CLI serve it. Each deployment on it
is looked up in Temporal, so a page is bounded (`Settings.stuck_limit`, at most
`Settings.stuck_max_limit`) and the rest are read a page at a time, each page naming the
cursor of the next."""

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from temporalio.client import Client

from slipway import queries
from slipway.diagnosis import Diagnosis, diagnose_all
from slipway.phases import WAITING
from slipway.settings import Settings

CURSOR = r"^[0-9]{1,17}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A page's cursor: its last deployment's phase change, in microseconds since 1970, and
its id. Every string of this form is a cursor, so a schema can state what is accepted."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def cursor(mark: queries.StuckMark) -> str:
    """The cursor of the page that begins after `mark`."""
    return f"{(mark.phase_updated_at - _EPOCH) // _MICROSECOND}_{mark.id}"


class PageError(ValueError):
    """A page asked for as no page can be: its message names the parameter and the rule."""


def mark(text: str) -> queries.StuckMark:
    """The place a cursor names."""
    if not re.fullmatch(CURSOR, text):
        raise PageError(f"after: {text!r} is not a cursor; give the one the page before gave")
    micros, deployment_id = text.split("_", 1)
    return queries.StuckMark(_EPOCH + int(micros) * _MICROSECOND, deployment_id)


def page_size(settings: Settings, limit: int | None) -> int:
    """How many deployments a page asked for `limit` holds; past the server's maximum it is
    a PageError that says how to read the rest."""
    if limit is None:
        return settings.stuck_limit
    if limit > settings.stuck_max_limit:
        raise PageError(
            f"limit: {limit} is over the most one page holds here, {settings.stuck_max_limit} "
            "(SLIPWAY_STUCK_MAX_LIMIT); read the rest a page at a time, after the cursor "
            "each page gives"
        )
    return limit


@dataclass(frozen=True)
class Page:
    """Stuck deployments, the longest stuck first, and the cursor of the page after them
    (None on the last page)."""

    found: list[Diagnosis]
    after: str | None


async def stuck_page(
    engine: sa.Engine,
    connect: Callable[[], Awaitable[Client]],
    older_than: timedelta,
    limit: int,
    after: str | None,
) -> Page:
    """Up to `limit` deployments queued or in progress whose phase has not moved for
    `older_than`, past the cursor `after`, diagnosed together. One row past the page is
    read to know whether another page follows, so the last page names none. Temporal's
    client is asked for (`connect`) once the database has answered: with neither up, the
    first to say so is the database, as for every reading command."""
    views = await asyncio.to_thread(
        queries.find_stuck,
        engine,
        older_than,
        WAITING,
        limit=limit + 1,
        after=mark(after) if after is not None else None,
    )
    shown = views[:limit]
    last = shown[-1] if len(views) > limit else None
    found = await diagnose_all(await connect(), shown)
    return Page(found, cursor(queries.StuckMark(last.phase_updated_at, last.id)) if last else None)
