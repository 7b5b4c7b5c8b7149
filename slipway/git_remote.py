"""What a repository URL may be, how it is shown, and what opens a private one."""

import base64
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

SCHEMES = ("https", "ssh", "git", "file")
"""What a repository URL may start with (and scp-like `user@host:path`, which is ssh)."""

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+-]{1,255}$")


class GitError(ValueError):
    """The repository cannot be deployed from; the message says why, with no secret in it."""


@dataclass(frozen=True)
class Credentials:
    """What opens a private repository: an HTTPS token (with its user name), or an SSH
    private key. Both held in memory only for the length of one git command."""

    token: str | None = None
    user: str = "x-access-token"
    ssh_key: str | None = None

    def secrets(self) -> list[str]:
        """Every value that must never be shown."""
        found = [s for s in (self.token, self.ssh_key) if s]
        if self.token:
            found.append(base64.b64encode(f"{self.user}:{self.token}".encode()).decode())
        return found


UNPARSED = "(a repository URL that does not parse)"
"""What is shown of a URL that does not parse: whatever credentials it holds stay unseen."""


def _split(url: str) -> SplitResult | None:
    """The URL's parts, None if it does not parse (a port is checked as it is read)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts


def check_url(url: str) -> str:
    """The URL if git may fetch from it; `GitError` otherwise. Credentials in it are refused:
    they belong in the project's sealed settings, not in a URL that is shown and recorded."""
    if _SCP_LIKE.match(url):
        return url
    parts = _split(url)
    if parts is None:
        raise GitError(
            "the repository URL does not parse as a URL (a bracket outside an IPv6 address, "
            "or a port that is not a number from 1 to 65535)"
        )
    if parts.scheme not in SCHEMES:
        raise GitError(
            f"the repository URL must start with {', '.join(s + '://' for s in SCHEMES)} or be "
            f"user@host:path (ssh), not {shown(url)!r}"
        )
    if parts.password or (parts.username and parts.scheme == "https"):
        raise GitError(
            "put no credentials in the repository URL: give the token with "
            "`slipway project set --git-token-file` (it is sealed)"
        )
    if parts.scheme != "file" and not parts.hostname:
        raise GitError(f"the repository URL {shown(url)!r} names no host")
    return url


def shown(url: str) -> str:
    """The URL with any credentials in it removed, fit to show and record."""
    if _SCP_LIKE.match(url):
        return url
    parts = _split(url)
    if parts is None:
        return UNPARSED
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def check_ref(ref: str) -> str:
    """A branch, tag or commit name git can be asked for, never an option."""
    if not _REF.match(ref) or ref.endswith((".lock", "/")):
        raise GitError(f"invalid ref {ref!r}: use a branch, tag or commit SHA")
    return ref
