"""building: what kind of upload this is; for an app, its image built on the Docker Engine
with the output streamed line by line; for a static site, where its root is."""

from collections.abc import Callable
from pathlib import Path

from activities.adapters.appconfig import AppConfigError, load_app_config
from activities.adapters.docker import LABEL_HOME, docker_client, image_tag, labels_for
from activities.adapters.files import write_atomically
from activities.adapters.images import BuildError, build_image
from activities.adapters.releases import ContainerRelease, write_container_release
from slipway.errors import BadInputError
from slipway.layout import Layout
from slipway.models import BuildResult
from slipway.phases import DeploymentType

STATIC_ROOTS = ("", "public", "dist", "build", "out")
"""Where a static site's index.html may be, in the order they are tried."""

_RESULT = "build.json"


def finished(layout: Layout, deployment_id: str) -> BuildResult | None:
    """The result of a completed build, if any."""
    result = layout.work(deployment_id) / _RESULT
    if result.exists():
        return BuildResult.model_validate_json(result.read_text())
    return None


def detect(source: Path) -> BuildResult:
    """A Dockerfile at the root makes a container; else an index.html makes a static site;
    an upload that is neither fails with a reason."""
    if (source / "Dockerfile").is_file():
        return BuildResult(detected_type="dockerfile", deployment_type=DeploymentType.CONTAINER)
    for root in STATIC_ROOTS:
        if (source / root / "index.html").is_file():
            return BuildResult(
                detected_type="static", deployment_type=DeploymentType.STATIC, site_root=root
            )
    raise BadInputError(
        "unsupported upload: no Dockerfile at its root and no index.html at its root or in "
        "public/, dist/, build/ or out/ (add a Dockerfile for an app, an index.html for a site)"
    )


def build(
    layout: Layout,
    docker_host: str,
    project: str,
    deployment_id: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
) -> BuildResult:
    """Detect the upload's type and, for an app, build its image and record its release.

    Idempotent: the image tag derives from the deployment id and an existing image with it is
    adopted, not rebuilt (and says nothing); the release is written atomically, marker last;
    the result file written last lets a resumed deployment skip the phase.
    """
    source = layout.source(deployment_id)
    found = detect(source)
    if found.deployment_type is DeploymentType.CONTAINER:
        found = _image(layout, docker_host, project, deployment_id, on_line, check)
    write_atomically(layout.work(deployment_id) / _RESULT, found.model_dump_json())
    return found


def _image(
    layout: Layout,
    docker_host: str,
    project: str,
    deployment_id: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
) -> BuildResult:
    source = layout.source(deployment_id)
    try:
        load_app_config(source)
    except AppConfigError as err:
        raise BadInputError(str(err)) from None
    tag = image_tag(project, deployment_id)
    labels = {**labels_for(project, deployment_id), LABEL_HOME: layout.identity}
    try:
        with docker_client(docker_host) as client:
            image_id = build_image(client, source, tag, on_line, check, labels=labels)
    except BuildError as err:
        raise BadInputError(f"the image did not build: {err}") from None
    release = ContainerRelease(image=tag, image_id=image_id, detected_type="dockerfile")
    write_container_release(layout, project, deployment_id, source, release)
    return BuildResult(
        detected_type="dockerfile", deployment_type=DeploymentType.CONTAINER, image_id=image_id
    )
