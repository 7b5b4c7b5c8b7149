"""Workers for tests: in-process, or as a real process that a test can SIGKILL."""

import asyncio
import sys
from types import TracebackType

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from slipway.settings import Settings
from slipway.stack import components
from slipway.stack.process import Service
from worker import build_workers


class RunningWorker:
    """The two workers of a server, running in this process until the context ends."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        extra: list[Interceptor] | None = None,
        *,
        host_only: bool = False,
    ) -> None:
        """With `host_only`, only the server's host-bound worker runs: a second server whose
        shared-queue work the test's main worker does."""
        self.workers: list[Worker] = build_workers(
            client, settings, extra or [], shared_queue=not host_only
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> "RunningWorker":
        self._tasks = [asyncio.create_task(w.run()) for w in self.workers]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.gather(*(w.shutdown() for w in self.workers))
        await asyncio.gather(*self._tasks, return_exceptions=True)


def worker_process(settings: Settings, name: str = "worker", *argv: str) -> Service:
    """A worker as its own process (`python -m worker`, or the module and arguments in
    `argv`), started and ready to be killed."""
    service = components.worker(settings, settings.sqlalchemy_url.replace("+psycopg", ""))
    service.name = name
    if argv:
        service.argv = [sys.executable, "-m", *argv]
    service.log = settings.home / "logs" / f"{name}-{settings.task_queue}.log"
    service.start()
    return service
