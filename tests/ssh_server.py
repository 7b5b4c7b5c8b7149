"""A real OpenSSH server on loopback for the tests that deploy over ssh with a deploy key:
its own host key, config and authorized keys in a temp dir, serving git over ssh as the user
the tests run as (`scripts/sshd` installs it)."""

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.components import free_port

SSHD = Path("/usr/sbin/sshd")


def sshd_available() -> bool:
    """OpenSSH's server and client are installed (sshd serves the user it runs as, so root is
    not needed)."""
    return (
        SSHD.exists() and shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None
    )


def keypair(path: Path) -> tuple[str, str]:
    """A new ed25519 key pair at `path`; (private key text, public key line)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy-key", "-f", str(path)],
        check=True,
    )
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


@dataclass(frozen=True)
class SshServer:
    """Where it listens and who it lets in."""

    port: int
    user: str
    authorized_keys: Path

    def url(self, bare: Path) -> str:
        """An ssh:// URL for a bare repository on this machine."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{bare}"

    def authorize(self, public_key: str) -> None:
        """Let the holder of `public_key` in, for git only (no shell, no forwarding)."""
        with self.authorized_keys.open("a") as keys:
            keys.write(f"restrict {public_key}\n")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()[-2000:]}")


@contextmanager
def serving_ssh(root: Path) -> Iterator[SshServer]:
    """sshd on 127.0.0.1, public keys only, for as long as the block lasts."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True
    )
    authorized = root / "authorized_keys"
    authorized.touch(mode=0o600)
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        # sshd's privilege separation needs its empty directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = root / "sshd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_listening(port, process, log)
        yield SshServer(port, getpass.getuser(), authorized)
    finally:
        process.terminate()
        process.wait(timeout=10)
