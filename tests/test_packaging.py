"""The production stack's files agree with the package: docker-compose.yml is valid for a
real Compose, and the image's Dockerfile copies and runs what pyproject.toml declares.
(No image can be pulled here, so the stack itself is not started in CI.)"""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from slipway.settings import Settings
from slipway.stack.components import traefik
from starter.cli import app
from tests.components import require

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _networks(service: dict[str, Any]) -> set[str]:
    """The Compose networks a service joins (listed or mapped; none given is `default`)."""
    return set(service.get("networks", ["default"]))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


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
    listed = set(setuptools["packages"])
    for top in {name.split(".")[0] for name in listed}:
        found = {
            ".".join(init.parent.relative_to(ROOT).parts)
            for init in (ROOT / top).rglob("__init__.py")
        }
        assert found <= listed, f"packages the wheel would lack: {sorted(found - listed)}"
    tops = {name.split(".")[0] for name in listed}
    tops |= {f"{module}.py" for module in setuptools["py-modules"]}
    assert tops <= copied, f"the image lacks {sorted(tops - copied)}"
    assert "uv.lock" in copied, "the image installs from the lock file"
    uv = re.search(r"uv==([\d.]+)", (ROOT / "Dockerfile").read_text())
    assert uv is not None and f"UV_VERSION={uv.group(1)}" in (ROOT / "run").read_text()


def test_compose_runs_commands_the_package_has() -> None:
    compose = _compose()
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


def test_apps_network_holds_the_two_proxies_only() -> None:
    """Traefik and the static server (which proxies to apps, and answers only Traefik's
    requests: see test_container_deployments) share the apps' network; nothing of the
    control plane does."""
    compose = _compose()
    apps = compose["networks"]["apps"]["name"]
    assert apps == compose["x-slipway-env"]["SLIPWAY_CONTAINER_NETWORK"] == "slipway_apps"
    services = compose["services"]
    on_it = {name for name, s in services.items() if "apps" in _networks(s)}
    assert on_it == {"traefik", "caddy"}
    hosted = [name for name, s in services.items() if "network_mode" in s]
    assert hosted == [], "a service outside Compose's networks escapes their separation"


def test_traefik_api_and_dashboard_are_off_in_both_stacks(tmp_path: Path) -> None:
    deployed = yaml.safe_load((ROOT / "deploy" / "traefik.yml").read_text())
    traefik(Settings(home=tmp_path))
    embedded = yaml.safe_load((tmp_path / "traefik" / "traefik.yml").read_text())
    for config in (deployed, embedded):
        assert "api" not in config
        assert config["ping"] == {"entryPoint": "traefik"}
    command = " ".join(_compose()["services"]["traefik"]["command"])
    assert "--api" not in command


def test_traefik_is_told_how_long_certificates_last_in_both_stacks(tmp_path: Path) -> None:
    """Traefik derives when and how often it renews from certificatesDuration, not from the
    certificates: both stacks pass it SLIPWAY_ACME_CERTIFICATE_HOURS, with the same default."""
    default = Settings(home=tmp_path).acme_certificate_hours
    for hours in (default, 24):
        traefik(Settings(home=tmp_path, acme_certificate_hours=hours))
        embedded = yaml.safe_load((tmp_path / "traefik" / "traefik.yml").read_text())
        assert embedded["certificatesResolvers"]["slipway"]["acme"]["certificatesDuration"] == hours
    service = _compose()["services"]["traefik"]
    assert _environment(service)["SLIPWAY_ACME_CERTIFICATE_HOURS"] == (
        f"${{SLIPWAY_ACME_CERTIFICATE_HOURS:-{default}}}"
    )
    command = " ".join(service["command"])
    assert re.search(r"certificatesDuration: %d.*\$\$SLIPWAY_ACME_CERTIFICATE_HOURS", command)


def test_no_service_trusts_database_connections() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        env = _environment(service)
        assert not any("trust" in value.lower() for value in env.values()), name
    postgres = _environment(services["postgres"])
    assert postgres["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "--auth-local=scram-sha-256" in postgres["POSTGRES_INITDB_ARGS"].split()
    assert "--auth-host=scram-sha-256" in postgres["POSTGRES_INITDB_ARGS"].split()


def test_the_stack_comes_back_and_keeps_its_certificates() -> None:
    """Every long-running service restarts by itself (the one-shot setup only on failure);
    Traefik publishes 80 and 443 on the host and keeps its ACME store on a volume; the ACME
    settings are in .env.example."""
    compose = _compose()
    for name, service in compose["services"].items():
        wanted = "on-failure" if name == "temporal-setup" else "unless-stopped"
        assert service.get("restart") == wanted, name
    traefik = compose["services"]["traefik"]
    assert {"80:80", "443:443"} <= set(traefik["ports"])
    stored = yaml.safe_load((ROOT / "deploy" / "traefik.yml").read_text())
    storage = stored["certificatesResolvers"]["slipway"]["acme"]["storage"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in traefik["volumes"]}
    assert Path(storage).parent.as_posix() in mounts
    assert mounts[Path(storage).parent.as_posix()] in compose["volumes"]
    example = (ROOT / ".env.example").read_text()
    for setting in ("SLIPWAY_ACME_CA=", "SLIPWAY_ACME_EMAIL="):
        assert setting in example
