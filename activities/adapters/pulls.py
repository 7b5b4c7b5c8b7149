"""Base images: which images a Dockerfile's stages start FROM, and pulling those the Engine
lacks before the build, with the credentials of their registry. A pull reports a few lines
per layer and a running total every few seconds, never a line per chunk of bytes. An image
already on the Engine is used as it is: a build neither waits for a registry nor changes base
under a warm cache unless the image is missing."""

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import docker
from docker.auth import resolve_index_name, resolve_repository_name
from docker.errors import APIError, DockerException, NotFound

from activities.adapters.engine_stream import Chunk, EngineStream
from activities.adapters.images import BuildError, clean_line
from slipway.settings import RegistryAuth

REPORT_SECONDS = 2.0
"""How often a pull in progress says how much it has downloaded."""

_FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$", re.IGNORECASE)
_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$", re.IGNORECASE)
_VARIABLE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def _instructions(dockerfile: str) -> Iterator[str]:
    """The Dockerfile's instructions, continued lines joined, comments left out."""
    current = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield (current + line).strip()
        current = ""
    if current.strip():
        yield current.strip()


def _filled(text: str, values: Mapping[str, str]) -> str | None:
    """`text` with `$NAME`, `${NAME}` and `${NAME:-default}` filled in; None if one is
    unknown."""
    unknown = False

    def value(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match[1] or match[3]
        if name in values:
            return values[name]
        if match[2] is not None:
            return match[2]
        unknown = True
        return ""

    filled = _VARIABLE.sub(value, text)
    return None if unknown else filled


def base_images(dockerfile: str, args: Mapping[str, str]) -> list[str]:
    """The images the stages start FROM, each once, with the ARGs declared before the first
    FROM filled in (from `args`, else their defaults). `scratch`, an earlier stage and a name
    left unresolved are not images to pull: the builder deals with them."""
    values: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    for instruction in _instructions(dockerfile):
        declared = _ARG.match(instruction)
        if declared and not stages:
            default = declared[2].strip().strip("\"'") if declared[2] is not None else None
            value = args.get(declared[1], default)
            if value is not None:
                values[declared[1]] = value
            continue
        step = _FROM.match(instruction)
        if step is None:
            continue
        image = _filled(step[1], values)
        pullable = image and image.lower() != "scratch" and image.lower() not in stages
        if image and pullable and image not in found:
            found.append(image)
        stages.add((step[2] or f"#{len(stages)}").lower())
    return found


def login_for(image: str, logins: Sequence[RegistryAuth]) -> dict[str, str] | None:
    """The credentials for the image's registry from the first of `logins` that has some, as
    the Engine takes them."""
    try:
        registry, _ = resolve_repository_name(image)
    except DockerException as err:
        raise BuildError(f"base image {image!r} is not an image name: {err}") from None
    for auth in logins:
        for name, login in auth.items():
            host = resolve_index_name(name)
            if host == registry or (host in _HUB and registry in _HUB):
                return {
                    "username": login.username,
                    "password": login.password.get_secret_value(),
                    "serveraddress": registry,
                }
    return None


def pull_missing(
    client: docker.DockerClient,
    images: list[str],
    logins: Sequence[RegistryAuth],
    on_line: Callable[[str], None],
    check: Callable[[], None],
) -> None:
    """Pull each image the Engine does not have yet, with the credentials for its registry
    from the first of `logins` that has some. `BuildError` says which could not be pulled and
    why (a wrong name, credentials refused, a registry that does not answer); no line or
    message carries a password."""
    for image in images:
        check()
        try:
            client.images.get(image)
            continue
        except NotFound:
            pass
        except APIError as err:
            raise BuildError(f"base image {image!r}: {err.explanation or err}") from None
        login = login_for(image, logins)
        secret = login["password"] if login else ""
        try:
            _pull(client, image, login, _Hiding(on_line, secret), check)
        except APIError as err:
            reason = _hidden(str(err.explanation or err), secret)
            raise BuildError(f"base image {image} could not be pulled: {reason}") from None
        except BuildError as err:
            raise BuildError(_hidden(str(err), secret)) from None


def _hidden(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


class _Hiding:
    """`on_line`, with a secret masked wherever a registry repeats it."""

    def __init__(self, on_line: Callable[[str], None], secret: str) -> None:
        self.on_line = on_line
        self.secret = secret

    def __call__(self, line: str) -> None:
        self.on_line(_hidden(line, self.secret))


def _pull(
    client: docker.DockerClient,
    image: str,
    login: dict[str, str] | None,
    on_line: Callable[[str], None],
    check: Callable[[], None],
) -> None:
    on_line(f"Pulling base image {image}" + (" (with credentials)" if login else ""))
    downloads: dict[str, tuple[int, int]] = {}
    reported = time.monotonic()

    def call() -> Iterator[Chunk]:
        stream: Iterator[Chunk] = client.api.pull(
            image, stream=True, decode=True, auth_config=login
        )
        return stream

    with EngineStream(client, call, check) as chunks:
        for chunk in chunks:
            if "error" in chunk:
                detail = chunk.get("errorDetail") or {}
                reason = detail.get("message") or chunk["error"]
                raise BuildError(f"base image {image} could not be pulled: {reason}")
            detail = chunk.get("progressDetail") or {}
            if chunk.get("status") == "Downloading" and detail.get("total"):
                downloads[str(chunk.get("id"))] = (int(detail["current"]), int(detail["total"]))
                if time.monotonic() - reported >= REPORT_SECONDS:
                    reported = time.monotonic()
                    done = sum(current for current, _ in downloads.values()) / 2**20
                    total = sum(size for _, size in downloads.values()) / 2**20
                    on_line(f"{image}: {done:.1f} of {total:.1f} MiB downloaded")
            elif "status" in chunk and not chunk.get("progress"):
                prefix = f"{chunk['id']}: " if chunk.get("id") else ""
                line = clean_line(f"{prefix}{chunk['status']}")
                if line:
                    on_line(line)
