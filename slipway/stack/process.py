"""A child process that is started, waited for until it answers, and stopped with its
whole process group, so nothing outlives the stack."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A service did not start or died; the message ends with the tail of its log."""


@dataclass
class Service:
    """One child process of the stack."""

    name: str
    argv: list[str]
    log: Path
    ready: Callable[[], bool]
    address: str
    env: dict[str, str] | None = None
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    pid_file: Path | None = None
    """Where the running process's id is written, for operators (and tests) to find it."""
    rotated: Path | None = None
    """A log the process appends to and reopens on SIGUSR1 (Traefik's access log), which
    `rotate` moves aside once it reaches `rotate_bytes`."""
    rotate_bytes: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process in its own session, its output appended to its log."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                user=self.user,
                start_new_session=True,
            )
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(f"{self.process.pid}\n")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the service answers; fail with its log if it dies or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServiceError(f"{self.name} exited while starting\n{self.tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise ServiceError(f"{self.name} did not answer within {timeout:g}s\n{self.tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the process group to stop; kill it if it has not within `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        self._signal(signal.SIGKILL)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash would."""
        if self.process is not None:
            self._signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def _signal(self, sig: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def rotate(self) -> bool:
        """Move the rotated log to `<name>.1` (replacing the one before) once it has reached
        `rotate_bytes`, and have the process reopen it. True if it moved."""
        log = self.rotated
        if log is None or self.process is None or not self.alive():
            return False
        try:
            if log.stat().st_size < self.rotate_bytes:
                return False
        except FileNotFoundError:
            return False
        os.replace(log, log.with_name(log.name + ".1"))
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGUSR1)
        return True

    def tail(self, lines: int = 30) -> str:
        """The last lines of the service's log."""
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
