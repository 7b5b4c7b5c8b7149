"""copying_files on the real file system: resume, content store, idempotence."""

import json
import uuid
from pathlib import Path

import pytest

from activities.adapters.beat import Beat
from activities.adapters.manifest import scan
from activities.phases.copying_files import copy_release
from slipway.errors import BadInputError
from slipway.layout import RELEASE_MARKER, Layout
from slipway.limits import UnpackLimits
from tests.helpers import make_site


def _copy(
    layout: Layout,
    source: Path,
    deployment_id: str,
    beat: Beat | None = None,
    limits: UnpackLimits | None = None,
) -> int:
    layout.work(deployment_id).mkdir(parents=True, exist_ok=True)
    result = copy_release(
        layout,
        "site",
        deployment_id,
        source,
        scan(source, Beat()),
        "",
        beat or Beat(),
        _quiet,
        limits or UnpackLimits(),
    )
    return result.linked


def _quiet(copied: int, total: int) -> None:
    return None


@pytest.mark.parametrize("remembered", ["heartbeat", "checkpoint"])
def test_resume_starts_at_the_entry_the_last_attempt_reached(
    remembered: str, tmp_path: Path
) -> None:
    """The position comes from the last heartbeat or, when no heartbeat reached Temporal
    before the worker died, from the checkpoint in the work dir."""
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "resume", extra_files=30)
    entries = scan(source, Beat())
    deployment_id = str(uuid.uuid4())
    release = layout.release("site", deployment_id)
    half = len(entries) // 2
    # What a first attempt left: the first half placed, then a torn file at the resume point.
    for entry in entries[:half]:
        target = release / entry.path
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("placed by the first attempt")
    torn = next(e for e in entries[half:] if e.kind == "file")
    (release / torn.path).parent.mkdir(parents=True, exist_ok=True)
    (release / torn.path).write_text("torn")

    position = {"next": half, "copied": half, "linked": 0}
    if remembered == "heartbeat":
        _copy(layout, source, deployment_id, Beat(position))
    else:
        layout.work(deployment_id).mkdir(parents=True, exist_ok=True)
        (layout.work(deployment_id) / "copy-position.json").write_text(json.dumps(position))
        _copy(layout, source, deployment_id, Beat())

    first_half = [e for e in entries[:half] if e.kind == "file"]
    assert all((release / e.path).read_text() == "placed by the first attempt" for e in first_half)
    for entry in entries[half:]:
        if entry.kind == "file":
            assert (release / entry.path).read_bytes() == (source / entry.path).read_bytes()
    assert (release / RELEASE_MARKER).read_text() == deployment_id


def test_a_finished_copy_is_adopted_not_redone(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "once", extra_files=5)
    deployment_id = str(uuid.uuid4())
    _copy(layout, source, deployment_id)
    release = layout.release("site", deployment_id)
    before = {p: p.stat().st_ino for p in release.rglob("*")}
    _copy(layout, source, deployment_id)
    assert {p: p.stat().st_ino for p in release.rglob("*")} == before


def test_unchanged_files_are_linked_from_the_store(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "shared", extra_files=20)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert _copy(layout, source, first) == 0
    (source / "index.html").write_text("changed")
    assert _copy(layout, source, second) == 20
    one = layout.release("site", first) / "assets" / "d0" / "f3.txt"
    two = layout.release("site", second) / "assets" / "d0" / "f3.txt"
    assert one.samefile(two)
    assert (layout.release("site", second) / "index.html").read_text() == "changed"
    assert "changed" not in (layout.release("site", first) / "index.html").read_text()


def test_a_copy_that_would_eat_the_free_space_reserve_is_refused(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "big")
    deployment_id = str(uuid.uuid4())
    with pytest.raises(BadInputError, match="SLIPWAY_MIN_FREE_BYTES"):
        _copy(layout, source, deployment_id, limits=UnpackLimits(min_free_bytes=2**62))
    assert not layout.release("site", deployment_id).exists()


def test_the_release_marker_is_never_written_through_a_planted_link(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "marker")
    deployment_id = str(uuid.uuid4())
    outside = tmp_path / "outside"
    outside.mkdir()
    release = layout.release("site", deployment_id)
    release.mkdir(parents=True)
    (release / ".well-known").symlink_to(outside)
    with pytest.raises(BadInputError, match="never writes through a link"):
        _copy(layout, source, deployment_id)
    assert list(outside.iterdir()) == []


def test_links_in_a_static_site_become_copies_of_what_they_lead_to(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "home")
    source = make_site(tmp_path / "src", "links")
    (source / "css").mkdir()
    (source / "css" / "site.css").write_text("body{}")
    (source / "style.css").symlink_to("css/site.css")
    (source / "theme").symlink_to("css")
    deployment_id = str(uuid.uuid4())
    _copy(layout, source, deployment_id)
    release = layout.release("site", deployment_id)
    links = [p for p in release.rglob("*") if p.is_symlink()]
    assert links == []
    assert (release / "style.css").read_text() == "body{}"
    assert (release / "theme" / "site.css").samefile(release / "css" / "site.css")
