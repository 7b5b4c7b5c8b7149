"""The production stack's files agree with the package: docker-compose.yml is valid for a
real Compose, and the image's Dockerfile copies and runs what pyproject.toml declares.
(No image can be pulled here, so the stack itself is not started in CI.)"""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml
from typer.main import get_command

from starter.cli import app
from tests.components import require

ROOT = Path(__file__).resolve().parent.parent


def _dockerfile() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line.strip() and not line.startswith("#") and not line.startswith(" ")
    ]


def test_compose_file_is_valid(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose is not installed (apt-get install docker-compose)")
    assert compose is not None
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    checked = subprocess.run(
        [compose, "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert checked.returncode == 0, checked.stderr


def test_compose_needs_its_secrets_from_the_env_file(tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose is not installed (apt-get install docker-compose)")
    assert compose is not None
    empty = tmp_path / ".env"
    empty.write_text("")
    refused = subprocess.run(
        [compose, "--env-file", str(empty), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert refused.returncode != 0 and "set it in .env" in refused.stderr


def test_dockerfile_matches_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    steps = _dockerfile()
    base = next(arg for op, arg in steps if op == "FROM")
    version = re.search(r"python:(\d+)\.(\d+)", base)
    assert version is not None, base
    floor = re.search(r">=(\d+)\.(\d+)", project["project"]["requires-python"])
    assert floor is not None
    assert tuple(map(int, version.groups())) >= tuple(map(int, floor.groups()))

    copied = {source for op, arg in steps if op == "COPY" for source in arg.split()[:-1]}
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
    setuptools = project["tool"]["setuptools"]
    tops = {name.split(".")[0] for name in setuptools["packages"]}
    tops |= {f"{module}.py" for module in setuptools["py-modules"]}
    assert tops <= copied, f"the image lacks {sorted(tops - copied)}"
    assert "uv.lock" in copied, "the image installs from the lock file"
    uv = re.search(r"uv==([\d.]+)", (ROOT / "Dockerfile").read_text())
    assert uv is not None and f"UV_VERSION={uv.group(1)}" in (ROOT / "run").read_text()


def test_compose_runs_commands_the_package_has() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    built = [s for s in compose["services"].values() if s.get("build") == "."]
    assert built, "the Slipway services are built from this repository"
    for service in built:
        command = service["command"]
        if command[0] == "slipway":
            assert command[1] in commands, f"slipway has no command {command[1]!r}"
        else:
            assert command[:3] == ["python", "-m", "worker"]
            assert (ROOT / "worker.py").exists()
