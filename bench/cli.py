"""How soon the `slipway` command answers: `--help` and a command that reads the server
(`ls` through the API, as a person on another machine runs it, against an address where
nothing listens, so only the start and the refusal are timed), against the 0.5 s a person
expects of a CLI (kubectl, vercel) and against starting Python itself (`python -c pass`)."""

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


def _seconds(command: list[str], env: dict[str, str], repeats: int) -> float:
    """The median wall time of `command` over `repeats` runs after one untimed warm-up."""
    times = []
    for run in range(repeats + 1):
        began = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        if run:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(repeats: int) -> Section:
    """`slipway --help` and a remote `slipway ls` against the budget and bare Python."""
    slipway = str(Path(sys.executable).with_name("slipway"))
    remote = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SLIPWAY_API_URL": f"http://127.0.0.1:{free_port()}",
        "SLIPWAY_API_TOKEN": "bench",
    }
    python = _seconds([sys.executable, "-c", "pass"], remote, repeats)
    figures = []
    for name, args in (("slipway --help", ["--help"]), ("slipway ls (remote)", ["ls"])):
        took = _seconds([slipway, *args], remote, repeats)
        figures += [
            Figure("cli", f"`{name}` start to exit", took, BUDGET, "0.5 s budget", "s", 1.0),
            Figure("cli", f"`{name}` ÷ bare Python", took, python, "python -c pass", "s"),
        ]
    return Section("cli", figures, {"python_seconds": python, "repeats": repeats})
