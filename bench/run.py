"""Run every benchmark on a stack of its own, print the table, write the JSON.

    python -m bench.run [--quick|--full] [--json PATH] [--only NAME]...

--quick (the default) is CI-sized and takes a few minutes; --full measures at the sizes the
figures are quoted at. Nothing here asserts a time: figures are ratios against floors
measured in the same run, because absolute times vary between runs on a shared machine.
"""

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from bench import (
    builds,
    cli,
    copying,
    database,
    latency,
    recovery,
    remote,
    report,
    throughput,
)
from bench.machine import describe
from bench.report import Section
from bench.stack import REPO, running_stack
from worker import BLOCKING_THREADS


@dataclass(frozen=True)
class Scale:
    """How big each benchmark runs. `heartbeat_seconds` is the configured heartbeat timeout
    recovery is held against: the tests' 2 s in quick mode, Slipway's default in full."""

    name: str
    latency_repeats: int
    copy_files: int
    copy_megabytes: int
    copy_repeats: int
    concurrent_deployments: int
    stuck_sizes: tuple[int, ...]
    log_rows: int
    recovery_files: int
    heartbeat_seconds: float
    remote_repeats: int
    cli_repeats: int


QUICK = Scale(
    name="quick",
    latency_repeats=3,
    copy_files=1_000,
    copy_megabytes=20,
    copy_repeats=2,
    concurrent_deployments=10,
    stuck_sizes=(10_000, 100_000),
    log_rows=100_000,
    recovery_files=4_000,
    heartbeat_seconds=2.0,
    remote_repeats=1,
    cli_repeats=3,
)
FULL = Scale(
    name="full",
    latency_repeats=10,
    copy_files=10_000,
    copy_megabytes=200,
    copy_repeats=5,
    concurrent_deployments=200,
    stuck_sizes=(10_000, 100_000, 1_000_000),
    log_rows=1_000_000,
    recovery_files=10_000,
    heartbeat_seconds=10.0,
    remote_repeats=2,
    cli_repeats=10,
)


SECTIONS = ("cli", "copying", "builds", "latency", "remote", "database", "recovery", "throughput")


async def run_all(
    scale: Scale, root: Path, console: Console, only: frozenset[str] = frozenset(SECTIONS)
) -> list[Section]:
    """The CLI's start, copying and builds first (no stack), then the benchmarks that need
    the stack, throughput last because its serializers outlive it; `only` picks some."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(BLOCKING_THREADS))
    running = asyncio.current_task()
    assert running is not None
    loop.add_signal_handler(signal.SIGTERM, running.cancel)  # stop the stack, as Ctrl-C does
    sections = []
    if "cli" in only:
        console.log("cli: slipway --help, a remote and a local slipway ls vs python -c pass")
        sections.append(await asyncio.to_thread(cli.measure, scale.cli_repeats))
    if "copying" in only:
        console.log("copying: copy_release vs cp -a")
        sections.append(
            await asyncio.to_thread(
                copying.measure,
                root / "copying",
                scale.copy_files,
                scale.copy_megabytes,
                scale.copy_repeats,
            )
        )
    if "builds" in only:
        console.log("builds: a cold image build vs a rebuild with 1 source file changed")
        sections.append(
            await asyncio.to_thread(
                builds.measure,
                root / "builds",
                scale.copy_files,
                scale.copy_megabytes,
                scale.copy_repeats,
            )
        )
    if not only - {"cli", "copying", "builds"}:
        return sections
    console.log("starting PostgreSQL, Temporal, Caddy and Traefik on free loopback ports")
    async with running_stack(root / "stack", scale.heartbeat_seconds) as stack:
        if "latency" in only:
            console.log("latency: 1-file deployments vs the raw Temporal floor")
            sections.append(await latency.measure(stack, scale.latency_repeats))
        if "remote" in only:
            console.log("remote: the remote CLI's first deploy vs a 1-file-changed redeploy")
            sections.append(
                await remote.measure(
                    stack, scale.copy_files, scale.copy_megabytes, scale.remote_repeats
                )
            )
        if "database" in only:
            console.log("database: cost per deployment, queries at scale")
            sections.append(await database.measure(stack, scale.stuck_sizes, scale.log_rows))
        if "recovery" in only:
            console.log("recovery: SIGKILL a worker mid-copy")
            sections.append(
                await recovery.measure(stack, scale.recovery_files, scale.heartbeat_seconds)
            )
        if "throughput" in only:
            console.log(f"throughput: {scale.concurrent_deployments} concurrent deployments")
            sections.append(await throughput.measure(stack, scale.concurrent_deployments))
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_const", dest="scale", const=QUICK, help="CI-sized (default)"
    )
    size.add_argument(
        "--full", action="store_const", dest="scale", const=FULL, help="the quoted sizes"
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the raw numbers (bench/results/<mode>.json)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run this benchmark only (repeatable); the JSON then goes to <mode>-<names>.json",
    )
    args = parser.parse_args()
    scale: Scale = args.scale or QUICK
    only = frozenset(args.only or SECTIONS)
    name = scale.name if args.only is None else "-".join([scale.name, *sorted(only)])
    json_path: Path = args.json or REPO / "bench" / "results" / f"{name}.json"
    console = Console(width=None if sys.stdout.isatty() else 160)
    machine = {**describe(), "scale": asdict(scale)}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as tmp:
        try:
            sections = asyncio.run(run_all(scale, Path(tmp), console, only))
        except KeyboardInterrupt:
            console.log("interrupted; the stack is down")
            raise SystemExit(130) from None
        except asyncio.CancelledError:
            console.log("stopped by SIGTERM; the stack is down")
            raise SystemExit(143) from None
    seconds = time.monotonic() - began
    machine["load_average_after"] = os.getloadavg()
    report.show(console, sections)
    report.write_json(json_path, scale.name, machine, seconds, sections)
    console.log(f"{scale.name} run took {seconds:.0f} s; raw numbers in {json_path}")


if __name__ == "__main__":
    main()
