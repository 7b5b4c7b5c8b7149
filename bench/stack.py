"""The benchmarks' own embedded stack — PostgreSQL, Temporal, Caddy, Traefik on free loopback
ports with all data in a temp dir — and the workers that run against it, so a benchmark never
touches a developer's `.slipway` or ports."""

import asyncio
import os
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from temporalio.client import Client

from activities.adapters.traefik import serve_shared
from bench.floor import floor_worker
from slipway.database import engine_for, migrate
from slipway.loopback_ports import PortPool
from slipway.settings import Settings
from slipway.stack import components, credentials, postgres
from slipway.stack.process import Service
from slipway.temporal import connect, has_pollers
from worker import build_workers

REPO = Path(__file__).resolve().parent.parent


_PORTS = PortPool()


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now, outside the range the kernel hands
    out on its own, never handed out before in this run (see `PortPool`)."""
    return _PORTS.take()


@dataclass
class Stack:
    """A running stack: its settings (task queue `bench`), a client and the database."""

    root: Path
    settings: Settings
    client: Client
    services: list[Service]

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.settings.sqlalchemy_url)

    def on_queue(self, task_queue: str, **changes: object) -> Settings:
        """These settings with a task queue of their own, so benchmarks do not share work."""
        return self.settings.model_copy(update={"task_queue": task_queue, **changes})

    def _start(self, service: Service) -> Service:
        """Start `service` with its log under the stack's root and this repository importable."""
        service.log = self.root / "logs" / f"{service.name}.log"
        service.env = {**(service.env or os.environ), "PYTHONPATH": str(REPO)}
        service.start()
        return service

    def worker_process(self, settings: Settings, name: str) -> Service:
        """A Slipway worker as its own process (`python -m worker`), which can be SIGKILLed."""
        assert settings.database_url is not None
        service = components.worker(settings, settings.database_url)
        service.name = name
        return self._start(service)

    def api_process(self, settings: Settings, token: str) -> Service:
        """`slipway api` as its own process on a free loopback port, with this token, ready
        once /healthz answers; its address is the base URL."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            **settings.environment(),
            "SLIPWAY_API_TOKEN": token,
            "SLIPWAY_API_PORT": str(port),
        }
        argv = [str(Path(sys.executable).parent / "slipway"), "api"]
        log = self.root / "logs" / "api.log"
        return self._start(
            Service("api", argv, log, ready=lambda: _answers(url), address=url, env=env)
        )

    def floor_process(self, task_queue: str) -> Service:
        """The floor's worker as its own process."""
        argv = [sys.executable, "-m", "bench.floor", self.settings.temporal_address, task_queue]
        name = "floor-worker"
        return self._start(
            Service(name, argv, self.root / name, ready=lambda: True, address=task_queue)
        )

    def recovery_floor_process(self, task_queue: str) -> Service:
        """Recovery's floor worker (`python -m bench.recovery_floor`) as its own process, which
        can be SIGKILLed."""
        argv = [sys.executable, "-m", "bench.recovery_floor"]
        argv += [self.settings.temporal_address, task_queue]
        name = "recovery-floor-worker"
        return self._start(
            Service(name, argv, self.root / name, ready=lambda: True, address=task_queue)
        )

    def cpu_seconds(self, worker: Service) -> dict[str, float]:
        """CPU time used so far by each component, `worker`, and this process (the client),
        so a run can say which of them its time went to."""
        used = {s.name: process_cpu_seconds(s) for s in [*self.services, worker]}
        used["benchmark client"] = sum(os.times()[:2])
        return used

    async def polled(self, workflow_queue: str, activity_queues: Iterable[str] = ()) -> None:
        """Wait until a worker polls these queues, so a timed run does not include its start."""
        checks = [(workflow_queue, False)] + [(q, True) for q in activity_queues]
        deadline = asyncio.get_running_loop().time() + 60
        for queue, activities in checks:
            while not await has_pollers(self.client, queue, activities=activities):
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"no worker polls {queue}")
                await asyncio.sleep(0.1)


@asynccontextmanager
async def running_stack(root: Path, heartbeat_timeout: float) -> AsyncIterator[Stack]:
    """Start every component, migrate the schema, connect; stop them all at the end. The
    bake window is off: it watches a release after traffic has moved to it, which is no
    part of the deployment the floors are held against, and would keep every workflow open
    for minutes."""
    pg_port, temporal_port = free_port(), free_port()
    password_file = root / "postgres.password"
    settings = Settings(
        home=root / "home",
        database_url=credentials.url(pg_port, credentials.password(password_file)),
        temporal_address=f"127.0.0.1:{temporal_port}",
        temporal_ui_port=free_port(),
        http_port=free_port(),
        candidate_port=free_port(),
        https_port=free_port(),
        static_port=free_port(),
        traefik_admin_port=free_port(),
        metrics_port=0,
        task_queue="bench",
        heartbeat_timeout_seconds=heartbeat_timeout,
        bake_seconds=0.0,
    )
    services = [
        postgres.postgres_service(
            root / "postgres", password_file, pg_port, root / "logs" / "postgres.log"
        ),
        components.temporal(settings, temporal_port),
        components.caddy(settings),
        components.traefik(settings),
    ]
    started: list[Service] = []
    try:
        for service in services:
            service.start()
            started.append(service)
            await asyncio.to_thread(service.wait_ready)
        await asyncio.to_thread(migrate, settings.sqlalchemy_url)
        await asyncio.to_thread(serve_shared, settings)
        yield Stack(root, settings, await connect(settings), started)
    finally:
        for service in reversed(started):
            await asyncio.to_thread(service.stop)


@asynccontextmanager
async def in_process_workers(
    stack: Stack, settings: Settings, floor_queue: str | None = None
) -> AsyncIterator[None]:
    """Slipway's two workers, and the floor's worker when given its queue, in this process."""
    workers = build_workers(stack.client, settings)
    if floor_queue is not None:
        workers.append(floor_worker(stack.client, floor_queue))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def rss_bytes(service: Service, field: str = "VmRSS") -> int:
    """The process's resident memory now (`VmRSS`) or at its peak (`VmHWM`)."""
    assert service.process is not None
    for line in Path(f"/proc/{service.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _processes() -> tuple[dict[int, list[int]], dict[int, float]]:
    """Each process's children and its user and system CPU seconds (with its reaped
    children's), from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        children[int(fields[1])].append(pid)
        used[pid] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return children, used


def _below(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children[found[-1]]
    return found


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    return _below(pid, _processes()[0])


def process_cpu_seconds(service: Service) -> float:
    """User and system CPU seconds of the service's process and every descendant, living or
    reaped (PostgreSQL works in child processes)."""
    assert service.process is not None
    children, used = _processes()
    return sum(used.get(pid, 0.0) for pid in _below(service.process.pid, children))
