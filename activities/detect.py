"""building: what kind of site an upload is, and where its root is."""

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


def detect(source: Path) -> BuildResult:  # noqa: RET503 (bad_input never returns)
    """Find the site's type and root; an upload Slipway cannot deploy fails with a reason."""
    for root in STATIC_ROOTS:
        if (source / root / "index.html").is_file():
            return BuildResult(detected_type="static", deployment_type="static", site_root=root)
    bad_input(
        "unsupported upload: no index.html at its root or in public/, dist/, build/ or out/ "
        "(static sites are deployed as they are; add an index.html)"
    )


def build(work: Path, source: Path) -> BuildResult:
    """Detect, and record the result so a resumed deployment can skip this phase.
    Idempotent: detection only reads the source, and the result is written atomically."""
    result = detect(source)
    write_atomically(work / _RESULT, result.model_dump_json())
    return result
