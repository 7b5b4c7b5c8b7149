"""Keeping the embedded stack up: a child that dies is started again with backoff, saying
why, while the others (Traefik and Caddy, the data plane, above all) keep serving; only a
child that keeps dying stops the stack, and then it says which and why."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slipway.stack.process import Service, ServiceError

RESTARTS = 5
"""Restarts of one child within `WINDOW` after which it counts as dying for good."""

WINDOW = 300.0

FIRST_DELAY = 0.5
MAX_DELAY = 15.0


class GaveUpError(RuntimeError):
    """A child kept dying; the message names it and ends with its log."""


@dataclass
class Supervisor:
    """Watches the services; `say` tells a person what happened."""

    services: list[Service]
    say: Callable[[str], None]
    restarts: dict[str, list[float]] = field(default_factory=dict)

    def watch(self, interval: float = 0.5) -> None:
        """Block, restarting dead services and rotating their logs, until one keeps dying
        (`GaveUpError`)."""
        while True:
            self.check()
            time.sleep(interval)

    def check(self) -> None:
        """One pass: start again whichever service died, and rotate the logs that grew."""
        for service in self.services:
            if not service.alive():
                self.restart(service)
            service.rotate()

    def restart(self, service: Service) -> None:
        """Start `service` again after a backoff that grows with its recent restarts."""
        now = time.monotonic()
        recent = [t for t in self.restarts.get(service.name, []) if now - t < WINDOW]
        code = service.process.returncode if service.process else None
        if len(recent) >= RESTARTS:
            raise GaveUpError(
                f"{service.name} died {len(recent) + 1} times within {WINDOW:g}s (last exit "
                f"code {code}); stopping the stack\n{service.tail()}"
            )
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** len(recent))
        self.say(
            f"{service.name} exited (code {code}); starting it again in {delay:g}s\n"
            f"{service.tail(5)}"
        )
        time.sleep(delay)
        self.restarts[service.name] = [*recent, time.monotonic()]
        service.stop()  # whatever of its process group outlived it
        service.start()
        try:
            service.wait_ready()
        except ServiceError as err:
            self.say(str(err))
            return
        self.say(f"{service.name} is back: {service.address}")
