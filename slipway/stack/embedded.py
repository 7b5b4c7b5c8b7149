"""Starting and stopping the whole embedded stack in dependency order."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from slipway.settings import Settings
from slipway.stack import components, postgres
from slipway.stack.claims import check_ports, claim_home, stack_ports
from slipway.stack.process import Service, ServiceError
from slipway.stack.supervise import Supervisor


def temporal_port(settings: Settings) -> int:
    """The port of a Temporal address on loopback."""
    host, _, port = settings.temporal_address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise ValueError(
            f"the embedded stack serves Temporal on 127.0.0.1 only, not {settings.temporal_address}"
        )
    return int(port)


@dataclass
class EmbeddedStack:
    """Every service of one server, with its data under `settings.home`."""

    settings: Settings
    with_worker: bool = True
    extra: list[tuple[Service, int, str]] = field(default_factory=list)
    """Services started after the plan's, each with the port it listens on and the setting
    that names it (the API: 3001, SLIPWAY_API_PORT)."""
    services: list[Service] = field(default_factory=list)
    _lock: IO[str] | None = None

    @property
    def database_url(self) -> str:
        """The configured database, else the embedded one (with its password)."""
        return self.settings.database_url or self.settings.embedded_database_url

    def plan(self) -> list[Service]:
        """The services in start order; PostgreSQL only when no external one is configured."""
        s = self.settings
        planned: list[Service] = []
        if s.database_url is None:
            planned.append(
                postgres.postgres_service(
                    s.home / "postgres",
                    s.postgres_password_file,
                    s.postgres_port,
                    s.home / "logs" / "postgres.log",
                )
            )
        planned += [
            components.temporal(s, temporal_port(s)),
            components.caddy(s),
            components.traefik(s),
        ]
        if self.with_worker:
            planned.append(components.worker(s, self.database_url))
        return planned + [service for service, _, _ in self.extra]

    def start(self, on_ready: Callable[[Service], None] | None = None) -> None:
        """Claim the home and check the ports, then start every service and wait until each
        answers; on failure stop what started."""
        self._lock = claim_home(self.settings.home)
        ports = stack_ports(self.settings, temporal_port(self.settings))
        ports.update({port: f"{service.name}, {setting}" for service, port, setting in self.extra})
        check_ports(ports)
        try:
            for service in self.plan():
                service.pid_file = self.settings.home / "run" / f"{service.name}.pid"
                service.start()
                self.services.append(service)
                service.wait_ready()
                if on_ready is not None:
                    on_ready(service)
        except BaseException:
            self.stop()
            raise

    def supervisor(self, say: Callable[[str], None]) -> Supervisor:
        """What keeps every service up until one keeps dying (see `supervise`)."""
        return Supervisor(self.services, say)

    def get(self, name: str) -> Service:
        """The running service called `name`."""
        for service in self.services:
            if service.name == name:
                return service
        raise ServiceError(f"no service {name} in this stack")

    def stop(self) -> None:
        """Stop every service, the last started first, then let the home go."""
        while self.services:
            self.services.pop().stop()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
