"""Unpacking refuses every upload that could write, or point, outside the destination, or
that is bigger than its limits, counted while writing; and what it refuses, it refuses whole."""

import contextlib
import os
import tarfile
import threading
from pathlib import Path

import pytest

from activities.adapters.archive import UnsafeArchiveError, unpack
from activities.adapters.confined import ConfinedTree, LinkInPathError
from activities.adapters.links import LinkError, flatten, resolve
from activities.adapters.manifest import Entry
from slipway.limits import MIB, UnpackLimits
from tests.hostile import (
    CASES,
    OUTSIDE,
    REGULAR,
    SYMLINK,
    Corpus,
    entry,
    link,
    tar_with,
    zip_with,
)

LIMITS = UnpackLimits(max_bytes=32 * MIB, max_files=5_000)
"""What the tests allow: low enough that every bomb and flood is refused early."""


def _nothing() -> None:
    return None


def _disk_usage(root: Path) -> int:
    total = 0
    for current, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(current, name)).st_blocks * 512
    return total


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_upload_is_refused_whole_with_its_reason(
    case: str, corpus: Corpus, tmp_path: Path
) -> None:
    dest = tmp_path / "deep" / "dest"
    dest.mkdir(parents=True)
    peak = 0
    unpacking = True

    def watch() -> None:
        nonlocal peak
        while unpacking:
            peak = max(peak, _disk_usage(dest))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(UnsafeArchiveError, match=CASES[case].reason):
            unpack(corpus.archive(case), dest, LIMITS, _nothing)
    finally:
        unpacking = False
        watcher.join()
    assert peak <= LIMITS.max_bytes + 2 * MIB, f"{peak} bytes on disk while unpacking"
    assert not any(tmp_path.rglob("escaped*"))
    assert not OUTSIDE.exists()
    assert not Path("/tmp/slipway-absolute.txt").exists()
    assert not Path("/tmp/slipway-zip.txt").exists()


def test_a_bomb_is_refused_by_its_ratio_before_its_total(tmp_path: Path, corpus: Corpus) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    strict = UnpackLimits(max_ratio=10, ratio_floor=MIB)
    with pytest.raises(UnsafeArchiveError, match="SLIPWAY_UNPACK_MAX_RATIO"):
        unpack(corpus.archive("tar-bomb"), dest, strict, _nothing)


@pytest.mark.parametrize(
    ("limits", "setting"),
    [
        (UnpackLimits(max_file_bytes=1000), "SLIPWAY_UNPACK_MAX_FILE_BYTES"),
        (UnpackLimits(max_depth=3), "SLIPWAY_UNPACK_MAX_DEPTH"),
        (UnpackLimits(min_free_bytes=2**62), "SLIPWAY_MIN_FREE_BYTES"),
    ],
)
def test_each_limit_names_its_setting(limits: UnpackLimits, setting: str, tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "a.tar.gz", (entry("a/b/c/d/big.bin"), bytes(5000)))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError, match=setting):
        unpack(archive, dest, limits, _nothing)


def test_not_an_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"just some text")
    with pytest.raises(UnsafeArchiveError, match="neither"):
        unpack(junk, tmp_path, LIMITS, _nothing)


def test_links_that_stay_inside_the_final_tree_are_kept(tmp_path: Path) -> None:
    archive = tar_with(
        tmp_path / "ok.tar.gz",
        link("style.css", "css/site.css"),
        (entry("css/site.css"), b"body{}"),
        link("assets", "css"),
        link("up", "css/../css/site.css"),
    )
    dest = tmp_path / "tar"
    dest.mkdir()
    unpack(archive, dest, LIMITS, _nothing)
    assert (dest / "style.css").read_text() == "body{}"
    assert (dest / "assets" / "site.css").read_text() == "body{}"
    assert (dest / "up").read_text() == "body{}"

    zipped = zip_with(
        tmp_path / "ok.zip",
        ("css/site.css", b"body{}", REGULAR),
        ("style.css", b"css/site.css", SYMLINK),
    )
    dest = tmp_path / "zip"
    dest.mkdir()
    unpack(zipped, dest, LIMITS, _nothing)
    assert (dest / "style.css").read_text() == "body{}"


def test_hard_links_inside_the_upload_share_their_file(tmp_path: Path) -> None:
    archive = tar_with(
        tmp_path / "ok.tar.gz",
        (entry("a.txt"), b"shared"),
        (entry("b.txt", tarfile.LNKTYPE, "a.txt"), b""),
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack(archive, dest, LIMITS, _nothing)
    assert (dest / "a.txt").samefile(dest / "b.txt")


def test_links_resolve_as_the_kernel_resolves_them() -> None:
    links = {"x": "s/s/../..", "s": "."}
    with pytest.raises(LinkError, match="outside"):
        resolve("x", links)
    assert resolve("a/b", {"a/b": "../c/./d"}) == "c/d"
    assert resolve("l", {"l": "m/..", "m": "n/x", "n": "k"}) == "k"
    with pytest.raises(LinkError, match="loop"):
        resolve("a", {"a": "b/c", "b": "a"})


def test_a_static_release_holds_copies_where_the_upload_held_links() -> None:
    entries = [
        Entry("css", "dir"),
        Entry("css/site.css", "file", "d1", 6),
        Entry("index.html", "file", "d2", 5),
        Entry("nowhere", "link", target="missing.html"),
        Entry("style", "link", target="css"),
        Entry("top.css", "link", target="style/site.css"),
    ]
    placed = flatten(entries, "", LIMITS)
    assert [(path, e.path) for path, e in placed] == [
        ("css", "css"),
        ("css/site.css", "css/site.css"),
        ("index.html", "index.html"),
        ("style", "css"),
        ("style/site.css", "css/site.css"),
        ("top.css", "css/site.css"),
    ]
    with pytest.raises(LinkError, match="leads back"):
        flatten([Entry("index.html", "file", "d", 1), Entry("s", "link", target=".")], "", LIMITS)


def test_nothing_is_ever_written_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "planted")
    with ConfinedTree(root) as tree:
        for write in (
            lambda: tree.write_text("planted/marker", "x"),
            lambda: tree.mkdir("planted/sub"),
            lambda: os.close(tree.create("planted/file", 0o644)),
        ):
            with pytest.raises(LinkInPathError, match="planted"):
                write()
        tree.write_text("planted", "replaced, not followed")
    assert list(outside.iterdir()) == []
    assert (root / "planted").read_text() == "replaced, not followed"
