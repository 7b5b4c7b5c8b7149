"""Image builds through building, as a deployment runs them: a cold build of an app against
a rebuild of it with one source file changed. The rebuild must take every step before the
changed file from the build cache (the dependencies' install above all), so it costs what
changed, not the install."""

import shutil
import statistics
import time
import uuid
from pathlib import Path

from activities.adapters.beat import Beat
from activities.adapters.docker import docker_client, image_tag
from activities.adapters.images import remove_image
from activities.phases import building
from bench.report import Figure, Section
from slipway.metadata import PhaseMetadata
from slipway.settings import Settings

PROJECT = "bench-build"
APPLETS = ("sh", "mkdir", "head", "cat", "[")

DOCKERFILE = """FROM scratch
COPY bin /bin
COPY deps.txt /app/deps.txt
RUN mkdir -p /app/deps && cd /app/deps && i=0 && while [ $i -lt {files} ]; \\
    do head -c {size} /dev/zero > f$i; i=$((i+1)); done
COPY src /app/src
RUN cat /app/src/* > /app/bundle.js
CMD ["/bin/sh"]
"""
"""An app as most are built: its dependencies installed from a manifest, then its source
copied in and built. The install writes `files` files of `size` bytes."""

SOURCE_FILES = 50


def _quiet_progress(progress: int, metadata: PhaseMetadata) -> None:
    """building's progress callback; the activity writes it to the database, which is the
    database benchmark's business."""


def _context(root: Path, files: int, size: int, marker: str) -> Path:
    """The app's build context; `marker` in its first layer makes a build of it cold."""
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    busybox = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "bin" / ".marker").write_text(marker)
    (root / "deps.txt").write_text("left-pad==1.3.0\n")
    (root / "src").mkdir()
    for number in range(SOURCE_FILES):
        (root / "src" / f"f{number}.js").write_text(f"export const f{number} = {number};\n")
    (root / "Dockerfile").write_text(DOCKERFILE.format(files=files, size=size))
    return root


def _build(settings: Settings, context: Path) -> tuple[float, str]:
    """Seconds building takes for a new deployment of `context`, and its image tag."""
    deployment_id = str(uuid.uuid4())
    shutil.copytree(context, settings.layout.source(deployment_id), symlinks=True)
    job = building.Job(settings, PROJECT, deployment_id)
    began = time.perf_counter()
    building.build(job, lambda line: None, _quiet_progress, Beat())
    return time.perf_counter() - began, image_tag(PROJECT, deployment_id)


def measure(root: Path, files: int, megabytes: int, repeats: int) -> Section:
    """Median over `repeats` of: a cold build (a first layer no build has made before), then
    a rebuild of the same app with one source file changed."""
    settings = Settings(home=root / "home")
    size = max(1, megabytes * 1_000_000 // files)
    cold, warm, tags = [], [], []
    try:
        for repeat in range(repeats):
            context = _context(root / f"app-{repeat}", files, size, uuid.uuid4().hex)
            seconds, tag = _build(settings, context)
            cold.append(seconds)
            tags.append(tag)
            (context / "src" / "f0.js").write_text("export const f0 = 'changed';\n")
            seconds, tag = _build(settings, context)
            warm.append(seconds)
            tags.append(tag)
    finally:
        with docker_client(settings.docker_host) as client:
            for tag in tags:
                remove_image(client, tag)
    cold_median, warm_median = statistics.median(cold), statistics.median(warm)
    return Section(
        "builds",
        [
            Figure(
                "builds",
                "cold build ÷ rebuild with 1 source file changed",
                cold_median,
                warm_median,
                "1-file-changed rebuild",
                "s",
                at_least=2,
                note=f"speed-up; the install ({files:,} files, {megabytes} MB) is cached",
            ),
        ],
        {
            "install_files": files,
            "install_bytes": files * size,
            "cold_build_seconds": cold,
            "rebuild_one_changed_seconds": warm,
        },
    )
