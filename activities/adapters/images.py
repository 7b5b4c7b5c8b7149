"""Building an app's image on the Docker Engine, its output streamed line by line, and
removing it again. The image tag derives from the deployment id, so a finished build is
adopted by a retry, never made twice."""

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, NotFound

MAX_LINE = 4000
"""Build output lines are cut here: one minified blob must not become a huge log row."""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Terminal colours and cursor moves, which a log row has no use for."""


class BuildError(Exception):
    """The image does not build from this source; building it again will not help."""


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


def _image(client: docker.DockerClient, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except NotFound:
        return None


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
) -> str:
    """Build `context_dir` into an image tagged `tag` and return its id, sending each line of
    the build's output to `on_line` in order (colours stripped, blank lines dropped) and calling
    `check` between chunks so a cancellation stops the build.

    Idempotent: the Engine tags an image only once its build has completed, so an existing
    tag is a finished build of this deployment and is adopted without rebuilding (and without
    output). An interrupted build leaves no tag: a retry builds again, mostly from the cache.
    Leaving early (an exception from `check` or `on_line`) closes the connection, which makes
    the Engine abandon the build untagged.

    The legacy builder runs RUN steps with `network_mode` ("none" by default: builds must not
    depend on a registry or the internet). `BuildError` means the source does not build.
    """
    existing = _image(client, tag)
    if existing is not None:
        return str(existing.id)
    if not (context_dir / dockerfile).is_file():
        raise BuildError(f"no {dockerfile} at the root of the upload")
    check()
    try:
        return _build(client, context_dir, tag, on_line, check, labels, network_mode, dockerfile)
    except APIError as err:
        if not err.is_client_error():
            raise
        raise BuildError(f"docker build failed: {err.explanation or err}") from None


def _build(
    client: docker.DockerClient,
    context_dir: Path,
    tag: str,
    on_line: Callable[[str], None],
    check: Callable[[], None],
    labels: Mapping[str, str] | None,
    network_mode: str,
    dockerfile: str,
) -> str:
    """One build, streamed; a Dockerfile the Engine cannot parse is a 400 from the call."""
    stream = client.api.build(
        path=str(context_dir),
        dockerfile=dockerfile,
        tag=tag,
        labels=dict(labels) if labels else None,
        network_mode=network_mode,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
    )
    lines = _Lines(on_line)
    built: str | None = None
    try:
        for chunk in stream:
            check()
            if "error" in chunk:
                lines.flush()
                detail = chunk.get("errorDetail") or {}
                raise BuildError(f"docker build failed: {detail.get('message') or chunk['error']}")
            if "stream" in chunk:
                lines.feed(chunk["stream"])
            elif "status" in chunk and "progress" not in chunk:
                prefix = f"{chunk['id']}: " if chunk.get("id") else ""
                lines.feed(f"{prefix}{chunk['status']}\n")
            elif "aux" in chunk:
                built = chunk["aux"].get("ID") or built
        lines.flush()
    finally:
        stream.close()
    image = _image(client, tag)
    if built is None or image is None:
        raise RuntimeError(f"the Docker Engine ended the build of {tag} without an image")
    return str(image.id)


def remove_image(client: docker.DockerClient, tag: str) -> bool:
    """Remove the deployment's image tag, and the image with it when no other tag names it;
    False if the tag did not exist. Remove the image's containers first: Docker refuses to
    untag an image a container still uses.

    Idempotent: a missing tag is the goal reached. It removes by tag, never by id, so an
    image that another tag also names survives.
    """
    try:
        client.images.remove(tag, noprune=False)
    except NotFound:
        return False
    return True
