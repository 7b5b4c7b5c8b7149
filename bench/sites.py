"""The sites the benchmarks deploy and copy: reproducible, so two runs measure the same bytes."""

import random
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
