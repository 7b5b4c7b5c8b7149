"""The sites the benchmarks deploy and copy: reproducible, so two runs measure the same bytes."""

import random
import shutil
from pathlib import Path


def one_file(root: Path, text: str) -> Path:
    """A static site of a single index.html saying `text`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(f"<h1>{text}</h1>\n")
    return root


def tree(root: Path, files: int, total_bytes: int, seed: int = 4) -> Path:
    """A static site of `files` files (index.html included) of distinct random content,
    about `total_bytes` in all, spread over nested asset directories as a built site is."""
    rng = random.Random(seed)
    mean = max(total_bytes // files, 1)
    one_file(root, f"tree of {files} files")
    for i in range(files - 1):
        folder = root / "assets" / f"{i % 20:02d}" / f"{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(mean // 4, mean * 7 // 4)))
    return root


APP_HEALTH = '[health]\ninterval = 0.5\nstart_period = 0\nretries = 2\npath = "/"\n'
"""The app's health check at its quickest, so a redeploy waits on routing, not on Docker."""


def app(root: Path, text: str) -> Path:
    """An app's build context: a static busybox's httpd (copied from the host, since no
    registry can be reached for a base image) serving a page saying `text` on $PORT, and
    its wget for the health check Slipway generates."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "httpd", "wget"):
        (root / "bin" / applet).symlink_to("busybox")
    one_file(root / "www", text)
    (root / "Dockerfile").write_text(
        "FROM scratch\nCOPY bin /bin\nCOPY www /www\n"
        "CMD exec /bin/httpd -f -p 127.0.0.1:${PORT:-8080} -h /www\n"
    )
    (root / "slipway.toml").write_text(APP_HEALTH)
    return root
