"""The upload store: what a person uploads, kept under a content digest until deployed."""

import gzip
import hashlib
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from slipway.layout import Layout
from slipway.limits import LimitError, UnpackLimits

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class UploadError(ValueError):
    """The path cannot be uploaded; the message says why."""


class UploadTooLargeError(UploadError):
    """An upload passed its size limit while it arrived."""


class IncomingUpload:
    """An upload arriving in the store: its bytes go to a scratch file there while they are
    hashed and counted, and `keep` names the file by its digest. So an upload is written
    once, in the place it stays, and one over `limit` bytes is refused as soon as it passes
    the limit."""

    def __init__(self, layout: Layout, limit: int | None = None) -> None:
        self.layout = layout
        self.limit = limit
        layout.uploads.mkdir(parents=True, exist_ok=True)
        self.scratch = layout.uploads / f".incoming-{uuid.uuid4().hex}"
        self._out = self.scratch.open("xb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Hash and keep the next bytes."""
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise UploadTooLargeError(f"the upload is larger than {self.limit} bytes")
        self._hash.update(chunk)
        self._out.write(chunk)

    def flush(self) -> None:
        """Hand what is written to the operating system (a gzip stream packing into it asks)."""
        self._out.flush()

    def keep(self) -> str:
        """Put the upload in place under its digest, its upload id (the same bytes stored
        before are the same file), and return that id."""
        self._out.close()
        upload_id = self._hash.hexdigest()[:32]
        self.scratch.replace(self.layout.upload(upload_id))
        return upload_id

    def discard(self) -> None:
        """Drop whatever of it is not kept."""
        self._out.close()
        self.scratch.unlink(missing_ok=True)


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


def _pack(directory: Path, incoming: IncomingUpload, limits: UnpackLimits) -> None:
    with (
        gzip.GzipFile(fileobj=incoming, mode="wb", mtime=0, compresslevel=PACK_LEVEL) as zipped,
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
    incoming = IncomingUpload(layout)
    try:
        if kind == "dir":
            _pack(path, incoming, limits)
        else:
            with path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    incoming.write(chunk)
        return incoming.keep()
    finally:
        incoming.discard()
