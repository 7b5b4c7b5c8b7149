"""Building an app's image on the Docker Engine, its output streamed line by line and its
steps counted, and removing it again. The image tag derives from the deployment id, so a
finished build is adopted by a retry, never made twice; an unfinished one leaves nothing
behind, and a finished one keeps its stages' images tagged beside it, as the cache of the
project's next build, until it is removed."""

import contextlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

from activities.adapters.engine_stream import Chunk, EngineStream

MAX_LINE = 4000
"""Build output lines are cut here: one minified blob must not become a huge log row."""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Terminal colours and cursor moves, which a log row has no use for."""


STEP = re.compile(r"^Step (\d+)/(\d+) : (\S+)")
COMMITTED = re.compile(r"^\s*---> ([0-9a-f]{12,64})$")
RUNNING = re.compile(r"^\s*---> Running in ([0-9a-f]{12,64})$")
"""The legacy builder's lines that say where it is and what it made."""

STAGE_TAG = "-stage"
"""`<tag>-stage<n>`: a finished build's earlier stages, whose images nothing else keeps."""


class BuildError(Exception):
    """The image does not build from this source; building it again will not help."""


class LayerRemovedError(Exception):
    """A cached layer this build stood on was removed while it ran: removing an image takes
    with it the untagged layers nothing else builds on, and a build holds none of the layers
    it takes from the cache, so another project's image removal (or its cleanup) can pull
    one away. Not the source's fault: building again finds the layer gone and makes it."""


LAYER_REMOVED = "unknown parent image ID"
"""What the Engine says when a step commits onto a layer removed since the step began."""


def failure_of(message: str) -> Exception:
    """The error a build failing with `message` raises: a retryable one if a layer went
    from under it, else a `BuildError`."""
    if LAYER_REMOVED in message:
        return LayerRemovedError(f"docker build failed: {message}; building again")
    return BuildError(f"docker build failed: {message}")


def clean_line(line: str) -> str:
    """A terminal line as a log row: colours removed, only what a carriage return left."""
    line = ANSI.sub("", line).rstrip("\r")
    return line.rsplit("\r", 1)[-1].rstrip()[:MAX_LINE]


class _Lines:
    """Reassembles whole lines from the build's chunks, which split and join them freely
    ('Step 1/5 : FROM scratch' and its newline arrive apart)."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self.on_line = on_line
        self.pending = ""

    def feed(self, text: str) -> None:
        *complete, self.pending = (self.pending + text).split("\n")
        for line in complete:
            self.emit(line)

    def emit(self, line: str) -> None:
        cleaned = clean_line(line)
        if cleaned:
            self.on_line(cleaned)

    def flush(self) -> None:
        self.emit(self.pending)
        self.pending = ""


class _Made:
    """What a build says, as log lines, steps for `on_step`, and what it made: the images its
    steps committed and the containers they ran in (both to remove if it does not finish),
    and each stage's image."""

    def __init__(self, on_line: Callable[[str], None], on_step: Callable[[int, int], None]):
        self.on_line = on_line
        self.on_step = on_step
        self.lines = _Lines(self._line)
        self.images: list[str] = []
        self.containers: list[str] = []
        self.stages: list[str] = []
        self.base = False

    def _line(self, line: str) -> None:
        if step := STEP.match(line):
            self.base = step[3].upper() == "FROM"
            self.on_step(int(step[1]), int(step[2]))
        elif ran := RUNNING.match(line):
            self.containers.append(ran[1])
        elif (committed := COMMITTED.match(line)) and not self.base:
            self.images.append(committed[1])
        self.on_line(line)

    def feed(self, chunk: Chunk) -> None:
        if "error" in chunk:
            self.lines.flush()
            detail = chunk.get("errorDetail") or {}
            raise failure_of(str(detail.get("message") or chunk["error"]))
        if "stream" in chunk:
            self.lines.feed(chunk["stream"])
        elif "status" in chunk and "progress" not in chunk:
            prefix = f"{chunk['id']}: " if chunk.get("id") else ""
            self.lines.feed(f"{prefix}{chunk['status']}\n")
        elif "aux" in chunk and chunk["aux"].get("ID"):
            self.stages.append(chunk["aux"]["ID"])


def _image(client: docker.DockerClient, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except NotFound:
        return None


def find_image(client: docker.DockerClient, tag: str) -> str | None:
    """The id of the image `tag` names, if the Engine has it."""
    image = _image(client, tag)
    return None if image is None else str(image.id)


def build_image(
    client: docker.DockerClient,
    context_dir: Path,
    tag: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
    *,
    labels: Mapping[str, str] | None = None,
    network_mode: str = "none",
    dockerfile: str = "Dockerfile",
    args: Mapping[str, str] | None = None,
    target: str | None = None,
    on_step: Callable[[int, int], None] = lambda step, steps: None,
) -> str:
    """Build `context_dir` into an image tagged `tag` and return its id, sending each line of
    the build's output to `on_line` in order (colours stripped, blank lines dropped), each
    `Step n/m` to `on_step`, and calling `check` between chunks and while the engine is
    silent, so a cancellation stops the build at once, even inside a long RUN step.

    Idempotent: the Engine tags an image only once its build has completed, so an existing
    tag is a finished build of this deployment and is adopted without rebuilding (and without
    output). Leaving early (an exception from `check` or `on_line`) shuts the connection,
    which makes the Engine abandon the build untagged; a build that fails or is left removes
    the containers and untagged images its steps made (cached layers other images build on
    stay), so a retry builds again from what earlier builds cached.

    The legacy builder runs RUN steps with `network_mode` ("none" by default); `args` are
    build arguments, `target` the stage to stop at. `BuildError` means the source does not
    build; `LayerRemovedError`, that another image's removal took a layer it stood on.
    """
    existing = _image(client, tag)
    if existing is not None:
        return str(existing.id)
    if not (context_dir / dockerfile).is_file():
        raise BuildError(f"no {dockerfile} at the root of the upload")
    check()

    def call() -> Any:
        return client.api.build(
            path=str(context_dir),
            dockerfile=dockerfile,
            tag=tag,
            labels=dict(labels) if labels else None,
            network_mode=network_mode,
            buildargs=dict(args) if args else None,
            target=target,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )

    made = _Made(on_line, on_step)
    try:
        with EngineStream(client, call, check) as chunks:
            for chunk in chunks:
                made.feed(chunk)
        made.lines.flush()
    except APIError as err:
        _discard(client, made)
        if not err.is_client_error():
            raise
        raise failure_of(str(err.explanation or err)) from None
    except BaseException:
        _discard(client, made)
        raise
    image = _image(client, tag)
    if not made.stages or image is None:
        raise RuntimeError(f"the Docker Engine ended the build of {tag} without an image")
    repository, name = tag.rsplit(":", 1)
    for number, stage in enumerate(made.stages[:-1], start=1):
        client.api.tag(stage, repository, f"{name}{STAGE_TAG}{number}")
    return str(image.id)


def _discard(client: docker.DockerClient, made: _Made) -> None:
    """Remove what an unfinished build made: the containers its steps ran in, and the images
    its steps committed that nothing else holds (no tag, no digest, no child image, no
    container). A base image or a cached layer that another image builds on stays."""
    for container in made.containers:
        with contextlib.suppress(APIError):
            client.api.remove_container(container, force=True)
    for image_id in reversed(made.images):
        image = _image(client, image_id)
        if image is None or image.tags or image.attrs.get("RepoDigests"):
            continue
        with contextlib.suppress(APIError):  # the Engine refuses while anything uses it
            client.images.remove(image.id)


def remove_image(client: docker.DockerClient, tag: str) -> bool:
    """Remove the deployment's image tag, and the image with it when no other tag names it;
    False if the tag did not exist. Remove the image's containers first: Docker refuses to
    untag an image a container still uses.

    Idempotent: a missing tag is the goal reached. It removes by tag, never by id, so an
    image that another tag also names survives. The build's stage tags go with it.
    """
    for image in client.images.list(filters={"reference": f"{tag}{STAGE_TAG}*"}):
        for stage in image.tags:
            if stage.startswith(f"{tag}{STAGE_TAG}"):
                with contextlib.suppress(NotFound):
                    client.images.remove(stage, noprune=False)
    try:
        client.images.remove(tag, noprune=False)
    except NotFound:
        return False
    return True
