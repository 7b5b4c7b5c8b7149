"""Removing a preview: its files, route and containers on its server (host queue), then its
record (shared queue). Only its own project's serializer starts the removal, between two of
its deployments, so that none of them writes the route while it goes."""

from collections.abc import Callable

import sqlalchemy as sa
from temporalio import activity

from activities.adapters.beat import Beat
from activities.heartbeat import heartbeating
from activities.upkeep import previews
from slipway import previews as records
from slipway.errors import BadInputError
from slipway.models import PreviewRemoval
from slipway.names import InvalidNameError, preview_site
from slipway.settings import Settings


def _checked(removal: PreviewRemoval) -> None:
    """A removal names a preview, never a project: refused for good otherwise."""
    try:
        if preview_site(removal.name, removal.project) != removal.site:
            raise InvalidNameError(f"{removal.site} is not the preview {removal.name}")
    except InvalidNameError as err:
        raise BadInputError(str(err)) from None


class PreviewActivities:
    """The two halves of a preview's removal."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.engine = engine

    @activity.defn(name="remove_preview")
    async def remove_preview(self, removal: PreviewRemoval) -> list[str]:
        """Remove what the preview used on this server (see `previews.remove`); idempotent,
        since it only removes."""
        _checked(removal)
        return await heartbeating(
            lambda beat: previews.remove(self.settings, removal.site, beat.check)
        )

    @activity.defn(name="record_preview_removed")
    async def record_removed(self, removal: PreviewRemoval) -> bool:
        """Record the preview removed and why, in its project's history; idempotent: a
        preview already recorded removed is left as it is."""
        _checked(removal)

        def run(_: Beat) -> bool:
            return records.mark_removed(
                self.engine, removal.site, removal.project, removal.name, removal.reason
            )

        return await heartbeating(run)

    def host(self) -> list[Callable[..., object]]:
        """The activities of the server's own queue."""
        return [self.remove_preview]

    def shared(self) -> list[Callable[..., object]]:
        """The activities of the shared queue."""
        return [self.record_removed]
