"""creating_symlinks: the project's `next` slot pointed at the new release, which only
requests naming this deployment as their candidate reach; `current` does not move yet."""

from activities.adapters.releases import point, verify_release
from slipway.layout import Layout


def stage(layout: Layout, project: str, release_id: str) -> None:
    """Point `next` at the release. Idempotent: pointing a link where it already points
    changes nothing, and the move is an atomic rename."""
    verify_release(layout, project, release_id)
    point(layout, project, layout.candidate(project), release_id, f".next-{release_id}")
