"""Hostile and broken uploads, built byte by byte."""

import io
import stat
import tarfile
import zipfile
from pathlib import Path


def tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    """A .tar.gz holding an index.html and the given members."""
    with tarfile.open(path, "w:gz") as tar:
        index = tarfile.TarInfo("index.html")
        index.size = 5
        tar.addfile(index, io.BytesIO(b"hello"))
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


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

HOSTILE_TARS = {
    "dotdot": lambda p: tar_with(p, (entry("../escaped.txt"), b"x")),
    "absolute": lambda p: tar_with(p, (entry("/tmp/slipway-absolute.txt"), b"x")),
    "symlink-outside": lambda p: tar_with(p, (entry("etc", tarfile.SYMTYPE, "/etc"), b"")),
    "symlink-climbs": lambda p: tar_with(p, (entry("up", tarfile.SYMTYPE, "../../outside"), b"")),
    "hardlink-outside": lambda p: tar_with(
        p, (entry("pw", tarfile.LNKTYPE, "../../../etc/passwd"), b"")
    ),
    "device": lambda p: tar_with(p, (entry("null", tarfile.CHRTYPE), b"")),
    "fifo": lambda p: tar_with(p, (entry("pipe", tarfile.FIFOTYPE), b"")),
}

HOSTILE_ZIPS = {
    "zip-dotdot": lambda p: zip_with(p, ("../escaped.txt", b"x", REGULAR)),
    "zip-absolute": lambda p: zip_with(p, ("/tmp/slipway-zip.txt", b"x", REGULAR)),
    "zip-symlink-outside": lambda p: zip_with(p, ("etc", b"/etc", SYMLINK)),
    "zip-symlink-chain": lambda p: zip_with(
        p,
        ("d/l", b"..", SYMLINK),
        ("d/l/m", b"..", SYMLINK),
        ("m/escaped.txt", b"x", REGULAR),
    ),
}


def corrupt_tar(path: Path) -> Path:
    """A .tar.gz cut off in the middle."""
    whole = tar_with(path.with_name("whole.tar.gz"), (entry("big.bin"), bytes(range(256)) * 400))
    path.write_bytes(whole.read_bytes()[:300])
    return path
