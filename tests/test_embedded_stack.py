"""`slipway demo` and `slipway dev`: the whole embedded stack as child processes."""

import asyncio
import os
import re
import signal
import socket
import sys
import threading
from pathlib import Path

import httpx
import pytest

from slipway.layout import Layout
from slipway.stack.claims import ClaimError, check_ports, claim_home
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
            "SLIPWAY_HTTPS_PORT": str(free_port()),
            "SLIPWAY_STATIC_PORT": str(free_port()),
            "SLIPWAY_TRAEFIK_ADMIN_PORT": str(free_port()),
            "SLIPWAY_CANDIDATE_PORT": str(free_port()),
            "SLIPWAY_API_PORT": str(free_port()),
            "SLIPWAY_METRICS_PORT": str(free_port()),
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
        # The API and its page run too, and the page's link is printed (not the token: the
        # output is not a terminal).
        page = f"http://127.0.0.1:{env['SLIPWAY_API_PORT']}/"
        assert f"Deployments  {page}?token=<the bearer token, in " in "".join(seen)
        token = (home / "api.token").read_text().strip()
        assert token not in "".join(seen)
        answer = httpx.get(f"{page}?token={token}", timeout=5, follow_redirects=True)
        assert answer.status_code == 200 and "Slipway" in answer.text
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
        if round_ == 0:
            # The addresses it printed answer: the worker's (Slipway's and the SDK's) and
            # Traefik's metrics.
            worker_metrics = f"http://127.0.0.1:{env['SLIPWAY_METRICS_PORT']}/metrics"
            assert worker_metrics in "".join(seen)
            scraped = httpx.get(worker_metrics, timeout=10).text
            assert 'slipway_deployments_ended_total{project="kept",status="active"} 1.0' in (
                scraped
            )
            assert "temporal_workflow_task_schedule_to_start_latency" in scraped
            traefik = f"http://127.0.0.1:{env['SLIPWAY_TRAEFIK_ADMIN_PORT']}/metrics"
            assert "traefik_router_requests_total" in httpx.get(traefik, timeout=5).text
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        assert _processes_under(home) == []


class _Poller:
    """A visitor loading the site every 50 ms on its own thread, counting what failed."""

    def __init__(self, port: str, host: str) -> None:
        self.url, self.host = f"http://127.0.0.1:{port}/", host
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5, headers={"Host": self.host}) as client:
            while not self._stop.is_set():
                try:
                    answer = client.get(self.url)
                    if answer.status_code != 200:
                        self.failures.append(f"HTTP {answer.status_code}")
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                self.answers += 1
                self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _slipway(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        SLIPWAY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_dev_keeps_serving_while_its_parts_die_and_come_back(
    outside_tmp: Path, tmp_path: Path
) -> None:
    home = outside_tmp / "supervised-home"
    env = _stack_env(home)
    stack = await asyncio.create_subprocess_exec(
        SLIPWAY, "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert stack.stdout is not None
    seen: list[str] = []
    try:
        await asyncio.wait_for(_read_until(stack.stdout, r"Running\. Press Ctrl-C", seen), 180)
        code, out = await _slipway(env, "dev")
        assert code == 1 and "another embedded stack" in out, out

        site = tmp_path / "live"
        site.mkdir()
        (site / "index.html").write_text("always up")
        code, out = await _slipway(env, "deploy", str(site), "--project", "live", "--wait")
        assert code == 0, out
        poller = _Poller(env["SLIPWAY_HTTP_PORT"], "live.localhost")
        big = tmp_path / "big"
        (big / "assets").mkdir(parents=True)
        (big / "index.html").write_text("in flight")
        for i in range(3000):
            (big / "assets" / f"{i}.txt").write_text(f"file {i}\n")
        code, out = await _slipway(env, "deploy", str(big), "--project", "flight")
        assert code == 0, out
        in_flight = out.split()[0]
        for name in ("postgres", "temporal", "worker"):
            pid_file = home / "run" / f"{name}.pid"
            killed = int(pid_file.read_text())
            os.kill(killed, signal.SIGKILL)
            await asyncio.wait_for(_read_until(stack.stdout, rf"{name} is back", seen), 120)
            assert int(pid_file.read_text()) != killed
        for _ in range(600):
            code, out = await _slipway(env, "status", in_flight, "--json")
            if code == 0 and '"status": "active"' in out:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"the deployment in flight did not complete: {out}")
        poller.stop()
        assert poller.answers > 50
        assert poller.failures == [], poller.failures[:5]
    finally:
        stack.send_signal(signal.SIGTERM)
        await asyncio.wait_for(stack.wait(), 60)
    assert _processes_under(home) == []


def test_a_taken_home_or_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    held = claim_home(tmp_path)
    try:
        with pytest.raises(ClaimError, match=f"pid {os.getpid()}"):
            claim_home(tmp_path)
    finally:
        held.close()
    claim_home(tmp_path).close()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        with pytest.raises(ClaimError, match=f"port {port} \\(Caddy, SLIPWAY_STATIC_PORT\\)"):
            check_ports({port: "Caddy, SLIPWAY_STATIC_PORT", free_port(): "Traefik"})
