"""building, first step: what kind of upload this is, and where a static site's root is."""

from pathlib import Path

from activities.atomic import write_atomically
from activities.failures import bad_input
from slipway.models import BuildResult

STATIC_ROOTS = ("", "public", "dist", "build", "out")
"""Where a static site's index.html may be, in the order they are tried."""

_RESULT = "build.json"


def finished(work: Path) -> BuildResult | None:
    """The result of a completed build, if any."""
    if (work / _RESULT).exists():
        return BuildResult.model_validate_json((work / _RESULT).read_text())
    return None


def record(work: Path, result: BuildResult) -> BuildResult:
    """Keep the build's result so a resumed deployment can skip the phase."""
    write_atomically(work / _RESULT, result.model_dump_json())
    return result


def detect(source: Path) -> BuildResult:  # noqa: RET503 (bad_input never returns)
    """A Dockerfile at the root makes a container; else an index.html makes a static site;
    an upload that is neither fails with a reason."""
    if (source / "Dockerfile").is_file():
        return BuildResult(detected_type="dockerfile", deployment_type="container")
    for root in STATIC_ROOTS:
        if (source / root / "index.html").is_file():
            return BuildResult(detected_type="static", deployment_type="static", site_root=root)
    bad_input(
        "unsupported upload: no Dockerfile at its root and no index.html at its root or in "
        "public/, dist/, build/ or out/ (add a Dockerfile for an app, an index.html for a site)"
    )
