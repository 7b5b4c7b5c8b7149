"""Apps for container tests, built FROM scratch with a static busybox: no registry can be
reached here, so an image cannot start from a base image. The busybox applets are symlinks
made on the host and COPYed with the binary, which works whatever the builder's RUN can do."""

import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

APPLETS = (
    "cat",
    "echo",
    "env",
    "false",
    "httpd",
    "ln",
    "ls",
    "mkdir",
    "nc",
    "rm",
    "sh",
    "sleep",
    "test",
    "touch",
    "true",
    "wget",
)
"""The commands the test apps and Slipway's generated health check use."""

SERVE = "exec /bin/httpd -f -v -p 127.0.0.1:${PORT:-8080} -h /www"
"""The default command: serve /www on the port Slipway passes in PORT (shell form, so PORT
is expanded; with Docker's init, SIGTERM reaches httpd and it stops at once)."""


def busybox() -> Path | None:
    """A static busybox (Debian's busybox-static), or None."""
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if candidate.is_file():
            return candidate
    found = shutil.which("busybox")
    return Path(found) if found else None


def write_busybox_app(
    root: Path,
    *,
    version: str = "v1",
    pages: Mapping[str, str] | None = None,
    run: Sequence[str] = (),
    command: str = SERVE,
    healthcheck: str | None = None,
    config: str | None = None,
) -> Path:
    """Write a Docker build context at `root` (created) and return it: busybox httpd serving
    `www/index.html` (which names `version`) and `pages` (relative path → text).

    `run` adds RUN steps (shell form, after www is copied), `command` replaces the CMD (shell
    form), `healthcheck` adds a HEALTHCHECK CMD-SHELL line to the image, and `config` is
    written as slipway.toml.

    bin/ holds an id of this app's own, so no layer of its images is another app's. Removing
    an image removes its untagged parents that nothing else builds on yet, and a build that
    takes a layer from the cache does not hold it: were the first layer shared, another
    test's cleanup (or Slipway's own, of that test's deployments) could remove it between
    this build's cache hit and its next step, which then fails "unknown parent image ID".
    """
    binary = busybox()
    if binary is None:
        raise FileNotFoundError("no busybox: apt-get install busybox-static")
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(binary, bin_dir / "busybox")
    for applet in APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    (bin_dir / "app-id").write_text(uuid.uuid4().hex)
    www = root / "www"
    www.mkdir()
    (www / "index.html").write_text(f"<h1>busybox app {version}</h1>\n")
    for relative, text in (pages or {}).items():
        page = www / relative
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(text)
    lines = ["FROM scratch", "COPY bin /bin", "COPY www /www"]
    lines += [f"RUN {step}" for step in run]
    if healthcheck is not None:
        lines.append(f"HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD {healthcheck}")
    lines.append(f"CMD {command}")
    (root / "Dockerfile").write_text("\n".join(lines) + "\n")
    if config is not None:
        (root / "slipway.toml").write_text(config)
    return root
