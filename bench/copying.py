"""copying_files against `cp -a` of the same tree, and a redeploy with one file changed
against a full copy: copy cost must scale with what changed."""

import os
import shutil
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from activities.adapters.beat import Beat
from activities.adapters.manifest import Entry, load, scan
from activities.phases.copying_files import copy_release
from activities.phases.pulling_source import pull
from bench import sites
from bench.report import Figure, Section
from slipway.layout import Layout
from slipway.limits import UnpackLimits
from starter.uploads import store_upload

PROJECT = "bench-copy"


def _quiet(copied: int, total: int) -> None:
    """copy_release's progress callback; the activity writes it to the database, which is
    the database benchmark's business, not this one's."""


def _copy(layout: Layout, source: Path, entries: list[Entry]) -> float:
    """Seconds copy_release takes to build a new release of `source`; dirty pages of earlier
    runs are flushed first, so one run does not pay for the writeback of another."""
    deployment_id = str(uuid.uuid4())
    layout.work(deployment_id).mkdir(parents=True)
    os.sync()
    began = time.perf_counter()
    copy_release(
        layout, PROJECT, deployment_id, source, entries, "", Beat(), _quiet, UnpackLimits()
    )
    return time.perf_counter() - began


def _cp(source: Path, dest: Path) -> float:
    os.sync()
    began = time.perf_counter()
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return time.perf_counter() - began


def _upload_and_pull(layout: Layout, tree: Path) -> tuple[float, float, list[Entry]]:
    """Seconds to store the tree as an upload (what `start_deployment` does) and to pull it
    into a work dir (unpack and hash: pulling_source), and the manifest that pull wrote."""
    began = time.perf_counter()
    upload_id = store_upload(layout, tree, UnpackLimits())
    stored = time.perf_counter() - began
    deployment_id = str(uuid.uuid4())
    began = time.perf_counter()
    pull(layout, upload_id, deployment_id, UnpackLimits(), Beat())
    pulled = time.perf_counter() - began
    return stored, pulled, load(layout.manifest(deployment_id))


def measure(root: Path, files: int, megabytes: int, repeats: int) -> Section:
    """Once: upload and pull the tree. Median over `repeats` of: `cp -a`, copy_release into
    an empty store (a first deploy), and copy_release of the tree with one file changed into
    the store the first filled (a redeploy). An untimed copy goes first in each repeat,
    because here the first large write after a large delete is several times slower
    whatever does it; `cp -a` goes first every other time."""
    tree = sites.tree(root / "tree", files, megabytes * 1_000_000)
    changed = root / "changed"
    _cp(tree, changed)
    (changed / "index.html").write_text("<h1>one file changed</h1>\n")
    stored, pulled, entries = _upload_and_pull(Layout(root / "uploads"), tree)
    shutil.rmtree(root / "uploads")
    changed_entries = scan(changed, Beat())

    cp, full, one = [], [], []
    for repeat in range(repeats):
        scratch = root / f"repeat-{repeat}"
        scratch.mkdir()
        _cp(tree, scratch / "warm-up")
        layout = Layout(scratch / "home")
        if repeat % 2:
            cp.append(_cp(tree, scratch / "cp"))
        full.append(_copy(layout, tree, entries))
        one.append(_copy(layout, changed, changed_entries))
        if not repeat % 2:
            cp.append(_cp(tree, scratch / "cp"))
        shutil.rmtree(scratch)
    shutil.rmtree(tree)
    shutil.rmtree(changed)

    size = sum(e.size for e in entries)
    described = f"{files:,} files, {size / 1e6:.0f} MB"
    cp_median, full_median = statistics.median(cp), statistics.median(full)
    return Section(
        "copying",
        [
            Figure(
                "copying",
                f"copy_files, {described}",
                full_median,
                cp_median,
                "cp -a",
                "s",
                at_most=1.2,
            ),
            Figure(
                "copying",
                "full copy ÷ redeploy with 1 file changed",
                full_median,
                statistics.median(one),
                "1-file-changed copy",
                "s",
                at_least=20,
                note="speed-up; unchanged files are hard links into the store",
            ),
            Figure(
                "copying",
                f"upload (tar.gz into the store), {described}",
                stored,
                cp_median,
                "cp -a",
                "s",
                note="start_deployment; paid again by a 1-file redeploy",
            ),
            Figure(
                "copying",
                f"pulling_source (unpack, hash), {described}",
                pulled,
                cp_median,
                "cp -a",
                "s",
                note="paid again by a 1-file redeploy",
            ),
        ],
        {
            "files": files,
            "bytes": size,
            "cp_a_seconds": cp,
            "copy_release_full_seconds": full,
            "copy_release_one_changed_seconds": one,
            "store_upload_seconds": stored,
            "pull_source_seconds": pulled,
        },
    )
