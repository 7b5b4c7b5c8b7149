"""Real git, run as a program: a per-project bare mirror that a redeploy only tops up, a ref
resolved to a full commit SHA, and that commit's tree exported as a tar archive (no `.git`),
which then unpacks like any upload.

Credentials never reach an argument list, a URL, a log or an error message: an HTTPS token
goes in an `Authorization` header set through git's environment, an SSH key in a private file
named in GIT_SSH_COMMAND; every message git prints is redacted before it is shown.
"""

import base64
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slipway.git_remote import SCHEMES, SHA, Credentials, GitError, check_ref

_POLL = 0.2


@dataclass(frozen=True)
class Repository:
    """One project's mirror of one repository, and how to reach it."""

    mirror: Path
    url: str
    credentials: Credentials
    private: Path
    """A directory only Slipway reads, for the SSH key and known hosts."""
    ca_file: Path | None = None
    max_bytes: int = 1 << 30

    def _redact(self, text: str) -> str:
        for secret in self.credentials.secrets():
            text = text.replace(secret, "***")
        return text.strip()[-600:]

    @contextmanager
    def _environment(self) -> Iterator[dict[str, str]]:
        """git's environment: no prompts, no system or user config, the protocols allowed,
        and the credentials, for as long as the block lasts."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.private),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_ALLOW_PROTOCOL": ":".join(SCHEMES),
            "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
            "GIT_HTTP_LOW_SPEED_TIME": "30",
            "GIT_CONFIG_COUNT": "0",
        }
        settings: list[tuple[str, str]] = []
        if self.ca_file is not None:
            settings.append(("http.sslCAInfo", str(self.ca_file)))
        creds = self.credentials
        if creds.token:
            basic = base64.b64encode(f"{creds.user}:{creds.token}".encode()).decode()
            settings.append(("http.extraHeader", f"Authorization: Basic {basic}"))
        for index, (name, value) in enumerate(settings):
            env[f"GIT_CONFIG_KEY_{index}"] = name
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env["GIT_CONFIG_COUNT"] = str(len(settings))
        self.private.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not creds.ssh_key:
            env["GIT_SSH_COMMAND"] = self._ssh(None)
            yield env
            return
        with tempfile.NamedTemporaryFile("w", dir=self.private, delete=True) as key:
            os.chmod(key.name, 0o600)
            key.write(creds.ssh_key.strip() + "\n")
            key.flush()
            env["GIT_SSH_COMMAND"] = self._ssh(Path(key.name))
            yield env

    def _ssh(self, key: Path | None) -> str:
        known = self.private / "known_hosts"
        # A host met for the first time is remembered, and must match ever after; only
        # errors are printed, so a failure reads as ssh's reason.
        options = (
            f"-o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known}"
            " -o LogLevel=ERROR"
        )
        return f"ssh {options} -o IdentitiesOnly=yes -i {key}" if key else f"ssh {options}"

    def _git(self, *args: str, check: Callable[[], None] | None = None) -> str:
        """Run git in the mirror; output on success, `GitError` with git's own words (redacted)
        otherwise. With `check`, the command is watched: cancelled, or stopped once the
        mirror grows past its limit."""
        with self._environment() as env:
            process = subprocess.Popen(
                ["git", "--git-dir", str(self.mirror), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=True,
            )
            try:
                if check is not None:
                    self._watch(process, check)
                out, err = process.communicate()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if process.returncode != 0:
            raise GitError(self._redact(err) or f"git {args[0]} failed")
        return out

    def _watch(self, process: "subprocess.Popen[str]", check: Callable[[], None]) -> None:
        while process.poll() is None:
            check()
            if self.size() > self.max_bytes:
                process.kill()
                self._too_big()
            time.sleep(_POLL)

    def _too_big(self) -> None:
        raise GitError(
            f"the repository is larger than {self.max_bytes} bytes (SLIPWAY_GIT_MAX_BYTES)"
        )

    def size(self) -> int:
        """Bytes the mirror holds on disk."""
        total = 0
        for current, _, files in os.walk(self.mirror):
            for name in files:
                try:
                    total += os.lstat(os.path.join(current, name)).st_size
                except FileNotFoundError:
                    continue
        return total

    def fetch(self, check: Callable[[], None]) -> None:
        """Top the mirror up: only objects it does not have yet travel."""
        if not (self.mirror / "HEAD").exists():
            self.mirror.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet")
        self._git(
            "fetch",
            "--prune",
            "--no-auto-gc",
            "--quiet",
            "--",
            self.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
            check=check,
        )
        if self.size() > self.max_bytes:
            self._too_big()

    def default_branch(self) -> str:
        """The branch the remote's HEAD names."""
        listed = self._git("ls-remote", "--symref", "--", self.url, "HEAD")
        for line in listed.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line.removeprefix("ref: refs/heads/").removesuffix("\tHEAD")
        raise GitError("the repository names no default branch: give a ref")

    def resolve(self, ref: str) -> str:
        """The full SHA of the commit `ref` (a branch, tag or commit) names in the mirror."""
        check_ref(ref)
        candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        if SHA.match(ref):
            candidates.insert(0, ref)
        for candidate in candidates:
            try:
                return self._git(
                    "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"
                ).strip()
            except GitError:
                continue
        raise GitError(f"the ref {ref!r} is not a branch, tag or commit of the repository")

    def submodules(self, commit: str) -> list[str]:
        """The submodules the commit declares, by path."""
        try:
            listed = self._git("config", "--blob", f"{commit}:.gitmodules", "--get-regexp", "path")
        except GitError:
            return []
        return [line.split(" ", 1)[1] for line in listed.splitlines() if " " in line]

    def export(self, commit: str, archive: Path) -> None:
        """Write the commit's tree as a tar archive (no `.git`, no submodules)."""
        with self._environment() as env, archive.open("wb") as out:
            done = subprocess.run(
                ["git", "--git-dir", str(self.mirror), "archive", "--format=tar", commit],
                stdout=out,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
                text=False,
                check=False,
            )
        if done.returncode != 0:
            raise GitError(self._redact(done.stderr.decode(errors="replace")))
