"""creating_symlinks: the project's `next` slot pointed at the new release, which only
requests naming this deployment as their candidate reach; `current` does not move yet. A
static release that brings `[static]` rules no kept release had gets them loaded into the
static server first, so the candidate is served, and proven, under its own rules."""

from activities.adapters.caddy import load_rules
from activities.adapters.releases import point, verify_release
from slipway.settings import Settings
from slipway.static_rules import RULES_DIR


def stage(settings: Settings, project: str, release_id: str) -> None:
    """Point `next` at the release. Idempotent: loading the rules derives the static
    server's configuration from the releases on disk (an unchanged one is left alone),
    pointing a link where it already points changes nothing, and the move is an atomic
    rename."""
    layout = settings.layout
    verify_release(layout, project, release_id)
    if (layout.release(project, release_id) / RULES_DIR).is_dir():
        load_rules(settings)
    point(layout, project, layout.candidate(project), release_id, f".next-{release_id}")
