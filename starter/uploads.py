"""The upload store: what a person uploads, kept under a content digest until deployed."""

import gzip
import hashlib
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from slipway.layout import Layout
from slipway.limits import LimitError, UnpackLimits

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class UploadError(ValueError):
    """The path cannot be uploaded; the message says why."""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def _walk(directory: Path, limits: UnpackLimits) -> Iterator[Path]:
    """Every entry under `directory` in a stable order, links not followed; the server's
    limits are checked here too, so a tree it would refuse is not packed and sent first."""
    count = 0

    def unreadable(err: OSError) -> None:
        raise UploadError(f"{err.filename} cannot be read: {err.strerror}")

    for current, dirs, files in os.walk(directory, onerror=unreadable):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            path = Path(current) / name
            count += 1
            try:
                limits.count(count)
                limits.path(path.relative_to(directory).as_posix())
            except LimitError as err:
                raise UploadError(f"{directory} cannot be deployed: {err}") from None
            yield path


PACK_LEVEL = 1
"""gzip level of a packed directory: it is unpacked on this same machine moments later, so
time spent squeezing it is time the person waits; level 1 packs several times faster than
the default 9 and keeps the store compact."""


def _pack(directory: Path, archive: Path, limits: UnpackLimits) -> None:
    with (
        archive.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=PACK_LEVEL) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for path in _walk(directory, limits):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)


def store_upload(layout: Layout, path: Path, limits: UnpackLimits) -> str:
    """Put a directory (packed as .tar.gz, links kept as links) or an archive into the store;
    return its upload id, the digest of its bytes, so the same upload is stored once. What
    it holds is judged when it is unpacked, under the same rules whatever its form."""
    if path.is_dir():
        kind = "dir"
    elif path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        kind = "archive"
    else:
        raise UploadError(
            f"{path} is neither a directory nor a {', '.join(ARCHIVE_SUFFIXES)} archive"
        )
    layout.uploads.mkdir(parents=True, exist_ok=True)
    scratch = layout.uploads / f".incoming-{uuid.uuid4().hex}"
    try:
        if kind == "dir":
            _pack(path, scratch, limits)
        else:
            shutil.copyfile(path, scratch)
        upload_id = _digest(scratch)
        scratch.replace(layout.upload(upload_id))
    finally:
        scratch.unlink(missing_ok=True)
    return upload_id
