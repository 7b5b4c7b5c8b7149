"""What a removed preview leaves behind on its server: its route first (Traefik stops
answering at its name), then its containers and the images no project keeps a release of,
its slot links and its releases. A promoted release stays its project's: the project holds
its own links to the same files, and its image is kept for it."""

import logging
import shutil
from collections.abc import Callable

from docker.errors import DockerException

from activities.adapters.containers import remove_container
from activities.adapters.docker import LABEL_DEPLOYMENT, LABEL_PROJECT, docker_client, ours
from activities.adapters.images import remove_image
from activities.adapters.releases import kept_anywhere
from activities.adapters.traefik import remove_route
from slipway.settings import Settings

log = logging.getLogger(__name__)


def remove(settings: Settings, site: str, check: Callable[[], None]) -> list[str]:
    """Remove everything the preview `site` used here; returns what was removed, in words.
    Idempotent: it only removes, and removing what is gone is a no-op."""
    layout = settings.layout
    removed: list[str] = []
    if remove_route(layout, site):
        removed.append(f"route {layout.route(site).name}")
    shutil.rmtree(layout.current(site).parent, ignore_errors=True)
    shutil.rmtree(layout.upstream(site, "current").parent, ignore_errors=True)
    if layout.site(site).is_dir():
        shutil.rmtree(layout.site(site), ignore_errors=True)
        removed.append(f"releases of {site}")
    try:
        removed += _containers_and_images(settings, site, check)
    except DockerException as err:
        log.warning("the containers of %s were not removed: no Docker Engine (%s)", site, err)
    return removed


def _containers_and_images(settings: Settings, site: str, check: Callable[[], None]) -> list[str]:
    layout = settings.layout
    removed: list[str] = []
    mine = ours(layout, f"{LABEL_PROJECT}={site}")
    with docker_client(settings.docker_host) as client:
        for container in client.containers.list(all=True, filters=mine):
            check()
            remove_container(client, container.name)
            removed.append(f"container {container.name}")
        for image in client.images.list(filters=mine):
            check()
            if kept_anywhere(layout, image.labels.get(LABEL_DEPLOYMENT, "")):
                continue
            for tag in image.tags:
                remove_image(client, tag)
                removed.append(f"image {tag}")
    return removed
