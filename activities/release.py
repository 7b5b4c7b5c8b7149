"""creating_symlinks: `current` switched to the new release by an atomic rename, and put back
when a deployment fails."""

import json
import os
from pathlib import Path

from activities.atomic import point_link, write_atomically
from activities.failures import bad_input
from slipway.layout import RELEASE_MARKER, Layout
from slipway.models import SwitchResult

_PREVIOUS = "previous-release.json"


def current_release(layout: Layout, project: str) -> str | None:
    """The deployment id `current` points to, or None before the first deployment."""
    current = layout.current(project)
    if not current.is_symlink():
        return None
    return Path(os.readlink(current)).name


def _point(layout: Layout, project: str, deployment_id: str) -> None:
    if current_release(layout, project) != deployment_id:
        point_link(
            layout.current(project), f"releases/{deployment_id}", f".current-{deployment_id}"
        )


def switch(layout: Layout, project: str, deployment_id: str) -> SwitchResult:
    """Point `current` at this deployment's release.

    Idempotent: the release `current` pointed to before is written to the work dir before the
    switch, and read back by a retry, which finds the switch done and changes nothing.
    """
    release = layout.release(project, deployment_id)
    if not (release / RELEASE_MARKER).is_file():
        bad_input(f"release {deployment_id} of {project} is missing or incomplete at {release}")
    record = layout.work(deployment_id) / _PREVIOUS
    if record.exists():
        previous = json.loads(record.read_text())["previous"]
    else:
        previous = current_release(layout, project)
        write_atomically(record, json.dumps({"previous": previous}))
    _point(layout, project, deployment_id)
    return SwitchResult(previous_release=previous)


def restore(layout: Layout, project: str, deployment_id: str) -> None:
    """Put `current` back where it was before `deployment_id` switched it.

    Idempotent: it only acts while `current` points at the failed release, and takes the
    previous release from the record written before the switch.
    """
    record = layout.work(deployment_id) / _PREVIOUS
    if current_release(layout, project) != deployment_id or not record.exists():
        return
    previous = json.loads(record.read_text())["previous"]
    if previous and layout.release(project, previous).is_dir():
        _point(layout, project, previous)
    else:
        layout.current(project).unlink()
