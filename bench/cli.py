"""How soon the `slipway` command answers: `--help` and a command that reads the server
(`ls`, through the API as a person on another machine runs it, and on the server from its
database; each against an address where nothing listens, so only the start and the refusal
are timed), against the 0.5 s a person expects of a CLI (kubectl, vercel) and against
starting Python itself (`python -c pass`).
Each figure's note has the CPU time the command used, which a loaded machine stretches far
less than the wall time."""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import Figure, Section
from bench.stack import free_port

BUDGET = 0.5
"""Seconds a CLI command may take to start and answer."""


def _seconds(command: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    """The median wall time and the median CPU time (user and system) of `command` over
    `repeats` runs after one untimed warm-up."""
    times, cpu = [], []
    for run in range(repeats + 1):
        used = os.times()
        began = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        took = time.perf_counter() - began
        now = os.times()
        if run:
            times.append(took)
            cpu.append(
                now.children_user - used.children_user + now.children_system - used.children_system
            )
    return statistics.median(times), statistics.median(cpu)


def measure(repeats: int) -> Section:
    """`slipway --help`, a remote and a local `slipway ls` against the budget and bare
    Python."""
    slipway = str(Path(sys.executable).with_name("slipway"))
    remote = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SLIPWAY_API_URL": f"http://127.0.0.1:{free_port()}",
        "SLIPWAY_API_TOKEN": "bench",
    }
    local = {
        "PATH": remote["PATH"],
        "HOME": remote["HOME"],
        "SLIPWAY_DATABASE_URL": f"postgresql://slipway@127.0.0.1:{free_port()}/slipway",
    }
    python, python_cpu = _seconds([sys.executable, "-c", "pass"], remote, repeats)
    figures = []
    cpu_seconds = {"python -c pass": python_cpu}
    for name, args, env in (
        ("slipway --help", ["--help"], remote),
        ("slipway ls (remote)", ["ls"], remote),
        ("slipway ls (on the server)", ["ls"], local),
    ):
        took, cpu = _seconds([slipway, *args], env, repeats)
        cpu_seconds[name] = cpu
        note = f"CPU {1000 * cpu:.0f} ms (python -c pass: {1000 * python_cpu:.0f} ms)"
        figures += [
            Figure(
                "cli", f"`{name}` start to exit", took, BUDGET, "0.5 s budget", "s", 1.0, note=note
            ),
            Figure("cli", f"`{name}` ÷ bare Python", took, python, "python -c pass", "s"),
        ]
    raw = {"python_seconds": python, "cpu_seconds": cpu_seconds, "repeats": repeats}
    return Section("cli", figures, raw)
