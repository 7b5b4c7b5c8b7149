"""Everything a deleted project has on one server, removed: its routes first (so it stops
answering), then its containers and images, then its files (releases, slots, app upstream
files, domains, own certificates, git mirror, the work dirs of its deployments and the
uploads they came from), and the stored contents no release links to any more. Only this
home's own containers and images are touched: others sharing the Docker Engine are not
Slipway's to remove."""

import shutil
from collections.abc import Callable
from pathlib import Path

from activities.adapters.certificates import own_certificates_file
from activities.adapters.containers import remove_container
from activities.adapters.docker import LABEL_PROJECT, docker_client, ours
from activities.adapters.hosts import record_of
from activities.adapters.images import remove_image
from activities.upkeep.cleanup import collect_store
from slipway.models import ProjectInventory, RemovalReport
from slipway.settings import Settings


def _gone(path: Path, report: RemovalReport) -> None:
    """Remove a file, link or tree; nothing there is the goal reached."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        return
    report.paths.append(str(path))


def remove_project(
    settings: Settings, project: str, inventory: ProjectInventory, check: Callable[[], None]
) -> RemovalReport:
    """Remove the project from this server. Idempotent: it only removes, and removing what is
    gone is a no-op, so a repeated or resumed delete finishes what the first began."""
    layout = settings.layout
    report = RemovalReport()
    for path in (
        layout.served_route(project),
        layout.route(project),
        own_certificates_file(layout, project),
    ):
        _gone(path, report)
    with docker_client(settings.docker_host) as client:
        mine = ours(layout, f"{LABEL_PROJECT}={project}")
        for container in client.containers.list(all=True, filters=mine):
            check()
            remove_container(client, container.name)
            report.containers.append(str(container.name))
        for image in client.images.list(filters=mine):
            check()
            for tag in image.tags:
                if remove_image(client, tag):
                    report.images.append(tag)
    places = [
        record_of(layout, project),
        layout.site(project),
        layout.current(project).parent,
        layout.upstream(project, "current").parent,
        layout.mirror(project),
        layout.git_home(project),
        *(layout.work(d) for d in inventory.deployment_ids),
        *(layout.upload(u) for u in inventory.upload_ids),
    ]
    for path in places:
        check()
        _gone(path, report)
    collect_store(layout, check)
    return report
