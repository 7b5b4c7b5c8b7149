"""Which projects a cleanup pass looks at: those whose deployments changed since this
worker's last pass, and those whose current release moved or that are new on this server,
with every project looked at once in a while. A project's releases only become removable
when one of its deployments changes (goes active, fails, is superseded) or its current
release moves, so a pass costs what changed, not every project every interval.

The watermark lives in the worker's memory: a worker's first pass looks at everything, and
a worker whose passes another worker of the server ran (they share an advisory lock) asks
from an older watermark, which looks at more, never less."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from activities.adapters.releases import current_release
from slipway.layout import Layout
from slipway.models import ReconcileInput

MARGIN = timedelta(seconds=10)
"""How far before the last pass's start changes are asked for again: a deployment row's
`updated_at` is its transaction's start, which can be before the last pass asked and
committed after (a transition's transaction takes milliseconds; one that took longer than
this is looked at by the next full pass)."""

Changes = Callable[[datetime | None], tuple[set[str], datetime]]
"""The projects with deployments changed after a time (None: asks for none), and the
database's time now."""


@dataclass(frozen=True)
class Plan:
    """One pass: the projects it looks at (None: all of them), and what the next pass
    starts from once this one is done."""

    projects: list[str] | None
    asked_at: datetime
    currents: dict[str, str | None]
    full: bool


class Watermark:
    """What one worker's cleanup remembers between its passes."""

    def __init__(self, full_every_seconds: float) -> None:
        self.full_every = full_every_seconds
        self._asked_at: datetime | None = None
        self._currents: dict[str, str | None] = {}
        self._full_at = 0.0
        self._input: ReconcileInput | None = None

    def plan(self, layout: Layout, inp: ReconcileInput, changes: Changes) -> Plan:
        """The next pass: everything on the first pass, when asked to (`every_project`),
        when what the passes are asked changed (how many releases to keep, say) or the last
        full pass is `full_every` seconds old; otherwise the projects changed since the last
        pass."""
        sites = (
            sorted(site.name for site in layout.sites.iterdir()) if layout.sites.is_dir() else []
        )
        currents = {project: current_release(layout, project) for project in sites}
        full = (
            self._asked_at is None
            or inp.every_project
            or _asked(inp) != self._input
            or time.monotonic() - self._full_at >= self.full_every
        )
        since = None if full or self._asked_at is None else self._asked_at - MARGIN
        changed, now = changes(since)
        if full:
            return Plan(None, now, currents, full=True)
        moved = {
            project
            for project, current in currents.items()
            if project not in self._currents or self._currents[project] != current
        }
        return Plan(sorted(changed | moved), now, currents, full=False)

    def passed(self, plan: Plan, inp: ReconcileInput) -> None:
        """The planned pass is done: the next asks from its start."""
        self._asked_at, self._currents, self._input = plan.asked_at, plan.currents, _asked(inp)
        if plan.full:
            self._full_at = time.monotonic()


def _asked(inp: ReconcileInput) -> ReconcileInput:
    """What a pass is asked, whoever asked for it."""
    return inp.model_copy(update={"every_project": False})
