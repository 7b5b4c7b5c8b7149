"""building: what kind of site an upload is, and where its root is."""

from pathlib import Path

from activities.failures import bad_input
from slipway.models import BuildResult

STATIC_ROOTS = ("", "public", "dist", "build", "out")
"""Where a static site's index.html may be, in the order they are tried."""


def detect(source: Path) -> BuildResult:  # noqa: RET503 (bad_input never returns)
    """Find the site's type and root; an upload Slipway cannot deploy fails with a reason."""
    for root in STATIC_ROOTS:
        if (source / root / "index.html").is_file():
            return BuildResult(detected_type="static", deployment_type="static", site_root=root)
    bad_input(
        "unsupported upload: no index.html at its root or in public/, dist/, build/ or out/ "
        "(static sites are deployed as they are; add an index.html)"
    )
