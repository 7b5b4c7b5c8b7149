"""Unpacking refuses every entry that could write outside the destination."""

import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from activities.archive import UnsafeArchiveError, unpack
from tests.hostile import (
    HOSTILE_TARS,
    HOSTILE_ZIPS,
    REGULAR,
    SYMLINK,
    corrupt_tar,
    entry,
    tar_with,
    zip_with,
)

ALL_HOSTILE: dict[str, Callable[[Path], Path]] = {**HOSTILE_TARS, **HOSTILE_ZIPS}


@pytest.mark.parametrize("case", sorted(ALL_HOSTILE))
def test_hostile_archive_is_refused_whole(case: str, tmp_path: Path) -> None:
    suffix = ".zip" if case.startswith("zip") else ".tar.gz"
    archive = ALL_HOSTILE[case](tmp_path / f"upload{suffix}")
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError):
        unpack(archive, dest)
    outside = [p for p in tmp_path.rglob("*") if "escaped" in p.name]
    assert outside == []
    assert not Path("/tmp/slipway-absolute.txt").exists()
    assert not Path("/tmp/slipway-zip.txt").exists()


def test_corrupt_archive_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match="corrupt"):
        unpack(corrupt_tar(tmp_path / "cut.tar.gz"), dest)


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"just some text")
    with pytest.raises(UnsafeArchiveError, match="neither"):
        unpack(junk, tmp_path)


def test_links_inside_the_tree_are_kept(tmp_path: Path) -> None:
    archive = tar_with(
        tmp_path / "ok.tar.gz",
        (entry("css/site.css"), b"body{}"),
        (entry("style.css", tarfile.SYMTYPE, "css/site.css"), b""),
    )
    dest = tmp_path / "tar"
    dest.mkdir()
    unpack(archive, dest)
    assert (dest / "style.css").read_text() == "body{}"

    zipped = zip_with(
        tmp_path / "ok.zip",
        ("css/site.css", b"body{}", REGULAR),
        ("style.css", b"css/site.css", SYMLINK),
    )
    dest = tmp_path / "zip"
    dest.mkdir()
    unpack(zipped, dest)
    assert (dest / "style.css").read_text() == "body{}"
