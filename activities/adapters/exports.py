"""The files a static site's Dockerfile built, copied out of its image. A container is created
from the image but never started, the directory is read from it as a tar, and that tar is
unpacked by `archive.unpack` under the limits of any upload: an image is as untrusted as an
upload, so a link leaving the tree, a device file, or too many or too large files refuse it.
The container is removed whatever happens (it carries the deployment's labels, so cleanup
finds it should a worker die first)."""

import contextlib
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import docker
from docker.errors import APIError, NotFound

from activities.adapters.archive import UnsafeArchiveError, unpack
from activities.adapters.images import BuildError
from slipway.limits import LimitError, UnpackLimits, size

TAR_ENTRY_BYTES = 2560
"""The most a tar spends on one entry besides its content (header, padding, a long name):
what the exported tar may hold beyond SLIPWAY_UNPACK_MAX_BYTES before it is cut short."""

_DIRECTORY = 1 << 31
"""The directory bit of the Engine's file modes (Go's os.ModeDir)."""


def export_directory(
    client: docker.DockerClient,
    image: str,
    path: str,
    dest: Path,
    limits: UnpackLimits,
    check: Callable[[], None],
    labels: Mapping[str, str],
) -> None:
    """Unpack the directory `path` of `image` into the empty directory `dest`, the tar kept
    beside it meanwhile (`<dest>.tar`, removed after). `BuildError` if the image has no
    directory there; `UnsafeArchiveError` if its content is refused."""
    scratch = dest.with_name(f"{dest.name}.tar")
    container = client.containers.create(
        image, command=["slipway-export"], labels=dict(labels), network_disabled=True
    )
    try:
        try:
            stream, stat = container.get_archive(f"{path}/.")
        except NotFound:
            raise BuildError(f"{path} is not in the built image") from None
        if not int(stat.get("mode", 0)) & _DIRECTORY:
            raise BuildError(f"{path} is not a directory in the built image")
        _save(stream, scratch, limits, check)
    finally:
        with contextlib.suppress(APIError):
            container.remove(force=True)
    try:
        unpack(scratch, dest, limits, check)
    finally:
        scratch.unlink(missing_ok=True)


def _save(
    stream: Iterable[bytes], scratch: Path, limits: UnpackLimits, check: Callable[[], None]
) -> None:
    """Write the tar to `scratch`, stopping short of the free-space reserve and of the most
    a tar of an allowed upload can be."""
    most = limits.max_bytes + limits.max_files * TAR_ENTRY_BYTES
    scratch.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(scratch.parent).free
    written = 0
    try:
        with scratch.open("wb") as out:
            for chunk in stream:
                check()
                written += len(chunk)
                if written > most:
                    raise LimitError(
                        f"the built files are more than {size(limits.max_bytes)} "
                        "(SLIPWAY_UNPACK_MAX_BYTES)"
                    )
                limits.free_space(written, free, "exporting the built files")
                out.write(chunk)
    except LimitError as err:
        scratch.unlink(missing_ok=True)
        raise UnsafeArchiveError(str(err)) from None
