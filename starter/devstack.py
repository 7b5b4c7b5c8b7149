"""`slipway dev` and `slipway demo`: the embedded stack in the foreground."""

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from temporalio.client import Client

from slipway import logs
from slipway.settings import Settings
from slipway.stack.claims import ClaimError
from slipway.stack.embedded import EmbeddedStack
from slipway.stack.probes import tcp_open
from slipway.stack.process import Service
from slipway.stack.supervise import GaveUpError, Supervisor
from slipway.temporal import connect, has_pollers
from starter.http.config import ApiSettings, resolve_token, token_file
from starter.render import console

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "examples" / "site"
"""The site `slipway demo` deploys."""


TRUSTED_APPS_ONLY = (
    "Only for apps you trust: apps share this machine's loopback, where Temporal and its UI "
    "answer without authentication (an app could read, start or cancel any deployment)."
)
"""Said at every start: the embedded stack has no network of its own for apps, and the
Temporal dev server has no authentication to turn on (PostgreSQL asks for a password and
Traefik's API is off)."""


DeployHook = Callable[[Settings], tuple[int, bool]]
"""What `slipway demo` runs once the stack answers: returns (exit code, keep running)."""


class Stopped(Exception):
    """SIGTERM arrived: stop the stack as Ctrl-C would."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Stopped


WORKER_WAIT_SECONDS = 120.0
"""How long the worker may take to poll its queues at start (it migrates the schema first)."""


async def wait_for_worker(
    settings: Settings, supervisor: Supervisor, within: float = WORKER_WAIT_SECONDS
) -> Client:
    """Connect to Temporal and wait until the worker polls both of its queues; meanwhile a
    service that dies (the worker, if its first connection failed) is started again."""
    client = await connect(settings)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await has_pollers(client, settings.task_queue) and await has_pollers(
            client, settings.host_task_queue, activities=True
        ):
            return client
        await asyncio.to_thread(supervisor.check)
        await asyncio.sleep(0.2)
    worker = next(s for s in supervisor.services if s.name == "worker")
    raise GaveUpError(
        f"no worker polled {settings.task_queue} within {within:g}s; its log ends:\n"
        + worker.tail(15)
    )


def ui_url(settings: Settings, workflow_id: str | None = None) -> str:
    """The Temporal UI, or one workflow in it."""
    return settings.temporal_ui(workflow_id)


def api_service(settings: Settings, api: ApiSettings) -> Service:
    """`slipway api` as a child of the stack: the HTTP API and the deployments page."""
    env = {**os.environ, **settings.environment()}
    return Service(
        name="api",
        argv=[sys.executable, "-m", "starter.cli", "api"],
        log=settings.home / "logs" / "api.log",
        ready=lambda: tcp_open(api.port),
        address=f"http://{api.host}:{api.port}/ (SLIPWAY_API_PORT)",
        env=env,
    )


def page_link(settings: Settings, api: ApiSettings) -> str:
    """The deployments page's link: with the token on a terminal (the page trades it for a
    session), without it in a log, which must not hold it."""
    where = f"http://{api.host}:{api.port}/"
    if sys.stdout.isatty():
        return f"{where}?token={resolve_token(settings, api)}"
    return f"{where}?token=<the bearer token, in {token_file(settings)}>"


def run_stack(settings: Settings, deploy: DeployHook | None = None) -> int:
    """Start the stack (with the API and its page), run `deploy` once it is ready, then hold
    until Ctrl-C or SIGTERM (or return at once when `deploy` says so); stop every service
    on the way out."""
    api = ApiSettings()
    stack = EmbeddedStack(
        settings, extra=[(api_service(settings, api), api.port, "SLIPWAY_API_PORT")]
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    say = _teller(settings.log_format)

    def ready(service: Service) -> None:
        say(f"✓ {service.name:<9} {service.address}", "green")

    code = 0
    try:
        say(f"Starting the embedded stack in {settings.home}")
        say(TRUSTED_APPS_ONLY, "yellow")
        stack.start(on_ready=ready)
        supervisor = stack.supervisor(say)
        asyncio.run(wait_for_worker(settings, supervisor))
        say(f"Deployments  {page_link(settings, api)}")
        say(f"Temporal UI  {ui_url(settings)}")
        say(f"Sites        http://<project>.{settings.base_domain}:{settings.http_port}/")
        for name, url in metrics_urls(settings):
            say(f"Metrics      {url} ({name})")
        if deploy is not None:
            code, hold = deploy(settings)
            if not hold:
                return code
        say("Running. Press Ctrl-C to stop.")
        supervisor.watch()
    except (ClaimError, GaveUpError) as err:
        say(str(err), "red")
        code = 1
    except (KeyboardInterrupt, Stopped):
        say("Stopping…")
    finally:
        stack.stop()
    return code


def metrics_urls(settings: Settings) -> list[tuple[str, str]]:
    """Where Prometheus scrapes the embedded stack: the worker (Slipway's and the Temporal
    SDK's metrics) and Traefik."""
    urls = [("Traefik", f"http://127.0.0.1:{settings.traefik_admin_port}/metrics")]
    if settings.metrics_port:
        urls.insert(0, ("worker", f"http://127.0.0.1:{settings.metrics_port}/metrics"))
    return urls


def _teller(log_format: str) -> Callable[..., None]:
    """How the stack tells a person what happens: on the console, or with
    `SLIPWAY_LOG_FORMAT=json` as JSON lines like the worker's."""
    if log_format == "json":
        logs.configure("json")
        log = logging.getLogger("slipway.dev")

        def as_json(text: str, style: str | None = None) -> None:
            (log.warning if style in ("red", "yellow") else log.info)(text)

        return as_json

    def on_console(text: str, style: str | None = None) -> None:
        # soft_wrap: a long link (the page's, with its token) stays on one line.
        console.print(text, style=style or "", markup=False, highlight=False, soft_wrap=True)

    return on_console
