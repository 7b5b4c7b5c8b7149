"""A private file is made once, whole, however many processes of the home ask at once."""

import os
import secrets
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slipway.private_files import private_file


def test_racing_makers_all_read_the_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret.key"

    def slow_key() -> bytes:
        time.sleep(0.05)  # the window in which a reader could find the file empty
        return secrets.token_hex(32).encode()

    with ThreadPoolExecutor(max_workers=16) as pool:
        read = list(pool.map(lambda _: private_file(path, slow_key), range(16)))

    assert len(set(read)) == 1 and len(read[0]) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["secret.key"]
