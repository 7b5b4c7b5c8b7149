"""Hostile and broken uploads, built byte by byte, each with the reason it must be refused
for. Most also come as a directory, for the CLI's directory uploads."""

import gzip
import io
import os
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OUTSIDE = Path("/tmp/slipway-hostile-outside")
"""Where the write-through cases aim: nothing may ever appear there."""

ESCAPE = "s/" * 24 + "../" * 24
"""A target that looks inside while `s` does not exist, and climbs to / once `s -> .` does."""

BOMB_BYTES = 256 * 1024 * 1024
"""What the bombs unpack to: far more than the limit the tests set."""

MANY_FILES = 300_000
MANY_FILES_ON_DISK = 6_000
"""The directory form: creating 300,000 files here takes minutes, and past the tests'
limit of 5,000 the rule is the same."""
DEEP = 5_000


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    """A .tar.gz holding an index.html and the given members."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        index = tarfile.TarInfo("index.html")
        index.size = 5
        tar.addfile(index, io.BytesIO(b"hello"))
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def zip_with(path: Path, *members: tuple[str, bytes, int]) -> Path:
    """A .zip holding an index.html and members (name, data, unix mode)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("index.html", "hello")
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


SYMLINK = stat.S_IFLNK | 0o777
REGULAR = stat.S_IFREG | 0o644


def _pax_named(name: str) -> tarfile.TarInfo:
    """An entry whose name only a pax header can carry whole (a NUL ends a plain one)."""
    info = entry("placeholder")
    info.pax_headers = {"path": name}
    return info


def link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return entry(name, tarfile.SYMTYPE, target), b""


def _zeros(out: io.RawIOBase | io.BufferedIOBase, total: int) -> None:
    block = bytes(1 << 20)
    for _ in range(total // len(block)):
        out.write(block)


def tar_bomb(path: Path) -> Path:
    """A small .tar.gz of one file of zeros far larger than any limit the tests set."""
    with gzip.open(path, "wb", compresslevel=1) as raw:
        info = tarfile.TarInfo("index.html")
        info.size = BOMB_BYTES
        raw.write(info.tobuf(format=tarfile.PAX_FORMAT))
        _zeros(raw, BOMB_BYTES)
        raw.write(bytes(1024))
    return path


def zip_bomb(path: Path) -> Path:
    """A small .zip of one file of zeros far larger than any limit the tests set."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("index.html", "hello")
        info = zipfile.ZipInfo("zeros.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as out:
            _zeros(out, BOMB_BYTES)
    return path


def _empty_file_header(name: bytes, template: bytes, checksum: int) -> bytes:
    """The ustar header of an empty file: the template with its name and checksum set."""
    total = checksum + sum(name)
    return name.ljust(100, b"\0") + template[100:148] + b"%06o\0 " % total + template[156:]


def many_files(path: Path) -> Path:
    """A .tar.gz of an index.html and 300,000 empty files (headers made directly: tarfile
    takes ten times as long)."""
    template = tarfile.TarInfo("").tobuf(format=tarfile.USTAR_FORMAT)
    checksum = sum(template[:148]) + 8 * 32 + sum(template[156:])
    with gzip.open(path, "wb", compresslevel=1) as raw:
        index = tarfile.TarInfo("index.html")
        index.size = 5
        raw.write(index.tobuf(format=tarfile.USTAR_FORMAT) + b"hello".ljust(512, b"\0"))
        for i in range(MANY_FILES):
            raw.write(_empty_file_header(b"f/%d" % i, template, checksum))
        raw.write(bytes(1024))
    return path


def corrupt_tar(path: Path) -> Path:
    """A .tar.gz cut off in the middle."""
    whole = tar_with(path.with_name("whole.tar.gz"), (entry("big.bin"), bytes(range(256)) * 400))
    path.write_bytes(whole.read_bytes()[:300])
    return path


def _tree(root: Path, links: dict[str, str]) -> Path:
    """A directory holding an index.html and the given links (made, never followed)."""
    root.mkdir(parents=True)
    (root / "index.html").write_text("hello")
    for name, target in links.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    return root


def _deep_tree(root: Path) -> Path:
    """A directory 5,000 levels deep, made one level at a time (its path is far longer than
    the system's path limit)."""
    root.mkdir(parents=True)
    (root / "index.html").write_text("hello")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEEP):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return root


def _many_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "index.html").write_text("hello")
    (root / "f").mkdir()
    fd = os.open(root / "f", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(MANY_FILES_ON_DISK):
            os.close(os.open(str(i), os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return root


def _names_tree(root: Path, name: str) -> Path:
    tree = _tree(root, {})
    (tree / name).write_text("x")
    return tree


def _fifo_tree(root: Path) -> Path:
    tree = _tree(root, {})
    os.mkfifo(tree / "pipe")
    return tree


@dataclass(frozen=True)
class Case:
    """An upload that must be refused, and a piece of the reason it must be refused with."""

    archive: Callable[[Path], Path]
    reason: str
    suffix: str = ".tar.gz"
    directory: Callable[[Path], Path] | None = None
    directory_reason: str | None = None
    """The reason for the directory form, where it differs (a directory is measured level
    by level, so a deep one is refused for its depth before its length)."""


CASES: dict[str, Case] = {
    "late-link": Case(
        lambda p: tar_with(p, link("x", ESCAPE), link("s", ".")),
        "leads outside the upload",
        directory=lambda p: _tree(p, {"x": ESCAPE, "s": "."}),
    ),
    "zip-late-link": Case(
        lambda p: zip_with(p, ("x", ESCAPE.encode(), SYMLINK), ("s", b".", SYMLINK)),
        "leads outside the upload",
        ".zip",
    ),
    "late-link-hardlink": Case(
        lambda p: tar_with(
            p,
            link("s", "."),
            link("x", ESCAPE),
            (entry("h", tarfile.LNKTYPE, "x/etc/passwd"), b""),
        ),
        "not a file earlier in the upload",
    ),
    "well-known-write-through": Case(
        lambda p: tar_with(
            p, link(".well-known", ESCAPE + OUTSIDE.as_posix().lstrip("/")), link("s", ".")
        ),
        "leads outside the upload",
        directory=lambda p: _tree(
            p, {".well-known": ESCAPE + OUTSIDE.as_posix().lstrip("/"), "s": "."}
        ),
    ),
    "zip-well-known-write-through": Case(
        lambda p: zip_with(
            p,
            (".well-known", (ESCAPE + OUTSIDE.as_posix().lstrip("/")).encode(), SYMLINK),
            ("s", b".", SYMLINK),
        ),
        "leads outside the upload",
        ".zip",
    ),
    "link-to-root": Case(
        lambda p: tar_with(p, link("root", "/")),
        "absolute path",
        directory=lambda p: _tree(p, {"root": "/"}),
    ),
    "dotdot-chain": Case(
        lambda p: tar_with(p, link("l1", "l2/.."), link("l2", "l3/.."), link("l3", "..")),
        "leads outside the upload",
        directory=lambda p: _tree(p, {"l1": "l2/..", "l2": "l3/..", "l3": ".."}),
    ),
    "link-loop": Case(
        lambda p: tar_with(p, link("a", "b"), link("b", "a")),
        "loop of links",
        directory=lambda p: _tree(p, {"a": "b", "b": "a"}),
    ),
    "tar-bomb": Case(tar_bomb, "SLIPWAY_UNPACK_MAX_BYTES"),
    "zip-bomb": Case(zip_bomb, "SLIPWAY_UNPACK_MAX_BYTES", ".zip"),
    "many-files": Case(many_files, "SLIPWAY_UNPACK_MAX_FILES", directory=_many_tree),
    "deep-path": Case(
        lambda p: tar_with(p, (entry("d/" * DEEP + "f"), b"x")),
        "SLIPWAY_UNPACK_MAX_PATH_LENGTH",
        directory=_deep_tree,
        directory_reason="SLIPWAY_UNPACK_MAX_DEPTH",
    ),
    "name-nul": Case(lambda p: tar_with(p, (_pax_named("nul\x00name.html"), b"x")), "control"),
    "name-newline": Case(
        lambda p: tar_with(p, (entry("new\nline.html"), b"x")),
        "control character",
        directory=lambda p: _names_tree(p, "new\nline.html"),
    ),
    "name-backslash": Case(
        lambda p: zip_with(p, ("..\\..\\escaped.txt", b"x", REGULAR)),
        "backslash",
        ".zip",
        directory=lambda p: _names_tree(p, "back\\slash.html"),
    ),
    "dotdot": Case(lambda p: tar_with(p, (entry("../escaped.txt"), b"x")), "climbs out"),
    "absolute": Case(
        lambda p: tar_with(p, (entry("/tmp/slipway-absolute.txt"), b"x")), "absolute path"
    ),
    "symlink-outside": Case(lambda p: tar_with(p, link("etc", "/etc")), "absolute path"),
    "symlink-climbs": Case(
        lambda p: tar_with(p, link("up", "../../outside")), "leads outside the upload"
    ),
    "hardlink-outside": Case(
        lambda p: tar_with(p, (entry("pw", tarfile.LNKTYPE, "../../../etc/passwd"), b"")),
        "climbs out",
    ),
    "device": Case(lambda p: tar_with(p, (entry("null", tarfile.CHRTYPE), b"")), "device file"),
    "fifo": Case(
        lambda p: tar_with(p, (entry("pipe", tarfile.FIFOTYPE), b"")),
        "device file or FIFO",
        directory=_fifo_tree,
    ),
    "zip-dotdot": Case(
        lambda p: zip_with(p, ("../escaped.txt", b"x", REGULAR)), "climbs out", ".zip"
    ),
    "zip-absolute": Case(
        lambda p: zip_with(p, ("/tmp/slipway-zip.txt", b"x", REGULAR)), "absolute path", ".zip"
    ),
    "zip-symlink-outside": Case(
        lambda p: zip_with(p, ("etc", b"/etc", SYMLINK)), "absolute path", ".zip"
    ),
    "zip-link-under-link": Case(
        lambda p: zip_with(
            p,
            ("d/l", b"..", SYMLINK),
            ("d/l/m", b"..", SYMLINK),
            ("m/escaped.txt", b"x", REGULAR),
        ),
        "lies under 'd/l', which is a symlink",
        ".zip",
    ),
    "corrupt": Case(corrupt_tar, "corrupt or truncated"),
}


class Corpus:
    """The cases' archives and directories, each built once per session on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def archive(self, name: str) -> Path:
        case = CASES[name]
        path = self.root / "archives" / f"{name}{case.suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            case.archive(path)
        return path

    def remove(self) -> None:
        """Remove what was built; GNU rm, since Python's rmtree recurses once per level and
        the deep case is deeper than Python's recursion limit."""
        subprocess.run(["rm", "-rf", str(self.root)], check=True)

    def directory(self, name: str) -> Path:
        make = CASES[name].directory
        assert make is not None, f"{name} has no directory form"
        path = self.root / "directories" / name
        if not path.exists():
            make(path)
        return path
