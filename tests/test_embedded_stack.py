"""`slipway demo` and `slipway dev`: the whole embedded stack as child processes."""

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

from slipway.layout import Layout
from starter.devstack import TRUSTED_APPS_ONLY
from tests.components import free_port

SLIPWAY = str(Path(sys.executable).parent / "slipway")


def _stack_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update(
        {
            "SLIPWAY_HOME": str(home),
            "SLIPWAY_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "SLIPWAY_TEMPORAL_UI_PORT": str(free_port()),
            "SLIPWAY_POSTGRES_PORT": str(free_port()),
            "SLIPWAY_HTTP_PORT": str(free_port()),
            "SLIPWAY_STATIC_PORT": str(free_port()),
            "SLIPWAY_TRAEFIK_ADMIN_PORT": str(free_port()),
            "COLUMNS": "200",
        }
    )
    return env


def _processes_under(home: Path) -> list[str]:
    """Command lines of live processes that mention `home` (the stack's children do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if str(home) in cmdline or str(home).encode() in environ:
            found.append(cmdline)
    return found


def _says_what_apps_reach_and_hides_the_password(home: Path, output: str) -> None:
    """The output warns that apps can reach Temporal, and shows the database URL with the
    password masked; no log carries the password either."""
    assert TRUSTED_APPS_ONLY in output
    assert "postgresql://postgres:***@127.0.0.1:" in output
    password = (home / "postgres.password").read_text().strip()
    assert password not in output
    for log in (home / "logs").glob("*.log"):
        assert password not in log.read_text(errors="replace"), log


async def test_demo_deploys_the_example_site_and_leaves_nothing_running(
    outside_tmp: Path,
) -> None:
    home = outside_tmp / "demo-home"
    env = _stack_env(home)
    process = await asyncio.create_subprocess_exec(
        SLIPWAY,
        "demo",
        "--exit",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 300)
    text = out.decode()
    assert process.returncode == 0, text
    assert f"http://example.localhost:{env['SLIPWAY_HTTP_PORT']}/" in text
    assert (
        f"http://127.0.0.1:{env['SLIPWAY_TEMPORAL_UI_PORT']}/namespaces/default/workflows/deploy-"
        in text
    )
    assert Layout(home).current("example").is_symlink()
    assert _processes_under(home) == []
    _says_what_apps_reach_and_hides_the_password(home, text)


async def _read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("the stack stopped early:\n" + "".join(seen))
        seen.append(line)
        if re.search(pattern, line):
            return


async def test_dev_serves_until_sigterm_and_keeps_data_across_restarts(
    outside_tmp: Path, tmp_path: Path
) -> None:
    home = outside_tmp / "dev-home"
    env = _stack_env(home)
    for round_ in range(2):
        process = await asyncio.create_subprocess_exec(
            SLIPWAY,
            "dev",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen: list[str] = []
        await asyncio.wait_for(_read_until(process.stdout, r"Running\. Press Ctrl-C", seen), 180)
        _says_what_apps_reach_and_hides_the_password(home, "".join(seen))
        ui = httpx.get(f"http://127.0.0.1:{env['SLIPWAY_TEMPORAL_UI_PORT']}/", timeout=5)
        assert ui.status_code == 200
        if round_ == 0:
            site = tmp_path / "site"
            site.mkdir()
            (site / "index.html").write_text("kept across restarts")
            deploy = await asyncio.create_subprocess_exec(
                SLIPWAY,
                "deploy",
                str(site),
                "--project",
                "kept",
                "--wait",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(deploy.communicate(), 120)
            assert deploy.returncode == 0, out.decode()
        answer = httpx.get(
            f"http://127.0.0.1:{env['SLIPWAY_HTTP_PORT']}/",
            headers={"Host": "kept.localhost"},
            timeout=5,
        )
        assert "kept across restarts" in answer.text
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        assert _processes_under(home) == []
