"""Apps come back after their Docker Engine restarts (as after a reboot: the Engine starts and
brings back its `unless-stopped` containers), and a stopped project stays stopped.

The test runs a Docker Engine of its own (its own socket, data and exec root, started the
way scripts/docker-engine starts the shared one) and restarts that, so that no other test's
containers on the shared Engine are disturbed."""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from docker.errors import DockerException
from temporalio.client import Client

from activities.adapters.docker import LABEL_PROJECT, docker_client
from slipway.models import LifecycleAction
from slipway.settings import Settings
from starter.lifecycle import change
from tests.apps import busybox
from tests.components import require
from tests.helpers import deploy_and_wait, fetch, wait_for
from tests.running import RunningWorker
from tests.test_container_deployments import app


class Engine:
    """A Docker Engine of this test's own, on loopback terms only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "-H",
                self.host,
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.pidfile),
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with docker_client(self.host) as client:
                    client.ping()
                    return
            except DockerException:
                time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer; see {self.root / 'dockerd.log'}")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: the Engine stops its containers first."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None


@pytest.fixture
def engine_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    require(shutil.which("dockerd") is not None, "no dockerd (apt-get install docker.io)")
    require(os.geteuid() == 0, "running a Docker Engine needs root")
    require(busybox() is not None, "no static busybox (apt-get install busybox-static)")
    # A short path: the Engine's unix sockets under it must stay within 108 bytes.
    root = Path("/tmp") / f"slipway-engine-{os.getpid()}"
    root.mkdir(exist_ok=True)
    engine = Engine(root)
    try:
        engine.start()
        yield engine
    finally:
        try:
            with docker_client(engine.host) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True)
        except DockerException:
            pass
        engine.stop()
        # The Engine leaves its network namespace mounted under its exec root.
        netns = root / "exec" / "netns" / "default"
        subprocess.run(["umount", str(netns)], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


async def test_apps_come_back_after_the_engine_restarts_and_stopped_ones_stay_stopped(
    client: Client,
    base_settings: Settings,
    engine: sa.Engine,
    tmp_path: Path,
    engine_of_its_own: Engine,
) -> None:
    settings = base_settings.model_copy(
        update={"task_queue": f"t-{os.urandom(6).hex()}", "docker_host": engine_of_its_own.host}
    )
    running, stopped = f"up-{os.urandom(5).hex()}", f"down-{os.urandom(5).hex()}"
    async with RunningWorker(client, settings):
        for project in (running, stopped):
            _, failure = await deploy_and_wait(
                client, settings, app(tmp_path / project, project), project
            )
            assert failure is None
        await change(client, settings, engine, stopped, LifecycleAction.STOP)

        engine_of_its_own.stop()
        assert fetch(settings, running).status_code != 200
        engine_of_its_own.start()

        await wait_for(
            "the app to answer again", lambda: fetch(settings, running).status_code == 200, 60
        )
        assert f"busybox app {running}" in fetch(settings, running).text
        with docker_client(engine_of_its_own.host) as client_of_its_own:
            [down] = client_of_its_own.containers.list(
                all=True, filters={"label": f"{LABEL_PROJECT}={stopped}"}
            )
            assert down.status == "exited", "a stopped project's container came back"
        assert fetch(settings, stopped).status_code == 503
        await change(client, settings, engine, stopped, LifecycleAction.START)
        assert fetch(settings, stopped).status_code == 200
