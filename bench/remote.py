"""The whole user path of a deployment through the remote CLI: `slipway deploy SITE --wait`
as a person runs it on another machine (its environment names only the API), against
`slipway api` and a worker running as processes of their own, from starting the command to
its exit once the deployment is active: hash, upload, pull, build, copy, switch.

A redeploy of the big site with one file changed is held against the first deployment of
the same site through the same path (content-addressed uploads: it must be at least 20x
faster), against a redeploy of a 1-file site through the same path (what any redeploy
costs, whatever the site's size), and the same redeploy through the local CLI, which packs
and stores the whole tree, is held against it."""

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import sites
from bench.report import Figure, Section
from bench.stack import Stack
from bench.workflows import activity_seconds, finished, started_at
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter.backend import TOKEN_VARIABLE, URL_VARIABLE
from starter.tree import SETTLE_NS

SLIPWAY = str(Path(sys.executable).parent / "slipway")
QUEUE = "bench-remote"
TOKEN = f"bench-{uuid.uuid4().hex}"
REDEPLOYS = 3
"""Redeploys with one file changed after each first deployment: the first of them finds
the hash cache as the first deployment left it, the others as a redeploy left it."""


@dataclass(frozen=True)
class Run:
    """One `slipway deploy --wait`: its seconds, and where they went: until the deployment's
    workflow started (the CLI's start, hashing, uploading, queueing), the workflow (pull,
    build, copy, switch), and from its close to the command's exit; and the workflow's
    seconds by activity (from scheduling to completion, read from its history)."""

    seconds: float
    before_workflow: float
    workflow: float
    after_workflow: float
    deployment_id: str
    activities: dict[str, float]


@asynccontextmanager
async def _server(stack: Stack, settings: Settings) -> AsyncIterator[str]:
    """A worker and the API as processes of their own; yields the API's base URL."""
    worker = stack.worker_process(settings, "remote-worker")
    api = stack.api_process(settings, TOKEN)
    try:
        await asyncio.to_thread(api.wait_ready)
        await stack.polled(settings.task_queue, [settings.host_task_queue])
        yield api.address
    finally:
        await asyncio.to_thread(api.stop)
        await asyncio.to_thread(worker.stop)


async def _deploy(
    stack: Stack, url: str, machine: Path, site: Path, project: str, local: Settings | None = None
) -> Run:
    """Time `slipway deploy SITE --project PROJECT --wait` on a machine that knows only the
    API (or, given `local` settings, on the server without the API: the whole tree packed
    into the upload store, as before content-addressed uploads); dirty pages of earlier
    runs are flushed first."""
    env = {
        "PATH": os.environ["PATH"],
        URL_VARIABLE: url,
        TOKEN_VARIABLE: TOKEN,
        "XDG_CACHE_HOME": str(machine / "cache"),
    }
    if local is not None:
        env = {"PATH": os.environ["PATH"], **local.environment()}
    await asyncio.to_thread(os.sync)
    began = time.time()
    process = await asyncio.create_subprocess_exec(
        SLIPWAY,
        *("deploy", str(site), "--project", project, "--wait"),
        env=env,
        cwd=machine,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    ended = time.time()
    if process.returncode != 0:
        raise RuntimeError(f"deploy of {project} failed: {err.decode()[-2000:]}")
    deployment_id = out.decode().split()[0]
    workflow_id = deployment_workflow_id(deployment_id)
    closed, failure = await finished(stack.client, workflow_id)
    if failure:
        raise RuntimeError(f"deployment of {project} failed: {failure}")
    start = await started_at(stack.client, workflow_id)
    spent = await activity_seconds(stack.client, workflow_id)
    return Run(ended - began, start - began, closed - start, ended - closed, deployment_id, spent)


def _median(runs: list[Run], part: str) -> float:
    return statistics.median(float(getattr(run, part)) for run in runs)


def _where(runs: list[Run]) -> str:
    parts = {
        "before the workflow (CLI start, hash, upload)": _median(runs, "before_workflow"),
        "the workflow (pull, build, copy, switch)": _median(runs, "workflow"),
        "after it (CLI exit)": _median(runs, "after_workflow"),
    }
    return "; ".join(f"{name}: {seconds:.2f} s" for name, seconds in parts.items())


def _activities(runs: list[Run]) -> str:
    """Where the workflow's time went: each activity's median seconds, largest first."""
    names = {name for run in runs for name in run.activities}
    spent = {
        name: statistics.median(run.activities.get(name, 0.0) for run in runs) for name in names
    }
    ranked = sorted(spent.items(), key=lambda pair: pair[1], reverse=True)
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in ranked)


async def measure(stack: Stack, files: int, megabytes: int, repeats: int) -> Section:
    """Per repeat: a new site of `files` files deployed to a new project, then redeployed
    `REDEPLOYS` times with its index.html changed; and a 1-file site redeployed as often.
    Medians over every run of a kind.

    Each site stays until the stack's root is removed: on an ext4 file system without a
    journal, such as this machine's, the kernel passes over every inode freed in the last
    minute or more before it hands out a new one, so the next repeat's first deployment,
    which creates 20,000 files (the blobs, then the tree), would pay seconds of kernel time
    in each `open` for a tree deleted just before it."""
    settings = stack.on_queue(QUEUE)
    root = stack.root / "remote"
    machine = root / "machine"
    machine.mkdir(parents=True)
    first: list[Run] = []
    changed: list[Run] = []
    small: list[Run] = []
    packed: list[Run] = []
    async with _server(stack, settings) as url:
        tiny = sites.one_file(root / "tiny", "warm")
        await _deploy(stack, url, machine, tiny, "remote-tiny")
        for repeat in range(repeats):
            project = f"remote-{repeat}-{uuid.uuid4().hex[:6]}"
            site = root / f"site-{repeat}"
            await asyncio.to_thread(sites.tree, site, files, megabytes * 1_000_000, 10 + repeat)
            # Built, then deployed: the hash cache keeps files older than its settling time.
            await asyncio.sleep(SETTLE_NS / 1e9)
            first.append(await _deploy(stack, url, machine, site, project))
            for redeploy in range(REDEPLOYS):
                (site / "index.html").write_text(f"<h1>{repeat}: change {redeploy}</h1>\n")
                changed.append(await _deploy(stack, url, machine, site, project))
                sites.one_file(tiny, f"{repeat}: change {redeploy}")
                small.append(await _deploy(stack, url, machine, tiny, "remote-tiny"))
            (site / "index.html").write_text(f"<h1>{repeat}: packed</h1>\n")
            packed.append(await _deploy(stack, url, machine, site, project, settings))
    described = f"{files:,} files, {megabytes} MB"
    first_median, changed_median = _median(first, "seconds"), _median(changed, "seconds")
    return Section(
        "remote",
        [
            Figure(
                "remote",
                f"first deploy ÷ redeploy with 1 file changed, {described}, remote CLI",
                first_median,
                changed_median,
                "1-file-changed redeploy",
                "s",
                at_least=20,
                note=f"speed-up, command start to active; first: {_where(first)}",
            ),
            Figure(
                "remote",
                f"redeploy with 1 file changed, {described}, remote CLI",
                changed_median,
                _median(small, "seconds"),
                "redeploy of a 1-file site",
                "s",
                note=f"{_where(changed)}; activities: {_activities(changed)}; 1-file site's "
                f"activities: {_activities(small)}",
            ),
            Figure(
                "remote",
                f"redeploy with 1 file changed, {described}: whole tree packed ÷ content",
                _median(packed, "seconds"),
                changed_median,
                "remote CLI, content-addressed",
                "s",
                note="speed-up over the local CLI, which packs and stores the whole tree as "
                f".tar.gz and pulls it all again; packed: {_where(packed)}",
            ),
        ],
        {
            "files": files,
            "megabytes": megabytes,
            "first": [asdict(run) for run in first],
            "one_changed": [asdict(run) for run in changed],
            "one_file_site": [asdict(run) for run in small],
            "packed_locally": [asdict(run) for run in packed],
        },
    )
