"""Settings from `SLIPWAY_*` environment variables, shared by the worker, the CLI and the stack."""

import json
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from slipway.layout import Layout
from slipway.limits import GIB, MIB, EnvLimits, UnpackLimits
from slipway.names import validate_server_name
from slipway.stack import credentials

NETWORK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""What a Docker network's name may be (and `none`, `host`, `auto`)."""


class RegistryLogin(BaseModel):
    """What opens one registry for pulls; the password is never shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1, max_length=1024)
    password: SecretStr = Field(min_length=1, max_length=16384)


RegistryAuth = dict[str, RegistryLogin]
"""Credentials per registry host (`ghcr.io`, `127.0.0.1:5000`, `docker.io`)."""

_REGISTRY_AUTH = TypeAdapter(RegistryAuth)


def registry_auth(text: str, where: str) -> RegistryAuth:
    """Credentials per registry from their JSON, `{"<registry>": {"username": ..., "password":
    ...}}`; a `ValueError` names `where` and what is wrong, never a value."""
    try:
        return _REGISTRY_AUTH.validate_json(text)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(top)'}: {problem['msg']}"
            for problem in err.errors(include_input=False, include_url=False)
        )
        raise ValueError(
            f'{where} must be JSON like {{"registry.example.com": {{"username": "...", '
            f'"password": "..."}}}}: {problems}'
        ) from None


class Settings(BaseSettings):
    """Where everything lives and listens; every address is on 127.0.0.1 by default."""

    model_config = SettingsConfigDict(
        env_prefix="SLIPWAY_", extra="ignore", hide_input_in_errors=True
    )
    """Errors name the setting and what is wrong, never its value: some hold secrets."""

    home: Path = Field(default=Path(".slipway"), description="All data of the embedded stack.")
    upload_store: Path | None = Field(
        default=None,
        description="Uploads dir shared by every server; default: <home>/uploads (one server).",
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server."
    )
    postgres_port: int = Field(default=5433, description="Port of the embedded PostgreSQL.")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    http_port: int = Field(default=8080, description="Traefik's public entry point.")
    candidate_port: int = Field(
        default=8082,
        description="Traefik's entry point for proving a candidate release: only this "
        "server's health checks ask it, so visitors' requests never pass the candidate routers.",
    )
    traefik_admin_port: int = Field(
        default=8090, description="Traefik's ping and Prometheus metrics."
    )
    static_port: int = Field(default=8081, description="Caddy, serving static releases.")
    base_domain: str = "localhost"
    proxy_address: str = Field(
        default="127.0.0.1", description="Where this server's workers reach Traefik's entry point."
    )
    static_address: str = Field(default="127.0.0.1", description="Where Traefik reaches Caddy.")
    static_admin_socket: Path | None = Field(
        default=None,
        description="Caddy's admin socket, through which workers load each release's [static] "
        "rules; default <home>/caddy/admin/caddy.sock (a directory only this user enters).",
    )
    container_network: str = Field(
        default="host",
        description="Docker network apps run on: host (a loopback port each), or a network "
        "Traefik shares (the production stack), where Traefik reaches them by name.",
    )
    task_queue: str = Field(default="slipway", description="Queue for workflows and database work.")
    server: str = Field(default="local", description="This deployment server's name.")
    secret_key: SecretStr | None = Field(
        default=None, description="Seals deployment environment values; default: a key file."
    )
    docker_host: str = Field(default="unix:///var/run/docker.sock", description="Docker Engine.")
    heartbeat_timeout_seconds: float = 10.0
    sticky_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a workflow's next task waits for the worker that ran the last "
        "one before any worker may take it. A worker that starts takes over the next task of "
        "every workflow on its queues at once, so this is the wait only when a worker dies "
        "while another already runs; a busy worker that misses it replays the workflow's "
        "whole history somewhere (at 1 s, 120 of 200 deployments' tasks did so under the "
        "throughput benchmark's load, none at 5 s).",
    )
    traefik_reload_throttle_seconds: float = Field(
        default=0.1,
        gt=0,
        le=10.0,
        description="How long the embedded Traefik waits after loading its routes before it "
        "loads them again (providers.providersThrottleDuration). A route written after a quiet "
        "spell loads at once; one written sooner (a new project writes two, its candidate "
        "and then its public route) waits for the rest of it. Longer loads a burst of new "
        "projects together, as each load reads every project's route: at 0.5 s Traefik "
        "spent 81 instead of 143 ms of CPU per new project among 200 deploying at once, and "
        "a new project took 0.85 instead of 0.55 s.",
    )
    temporal_timer_shift_seconds: float = Field(
        default=0.05,
        gt=0,
        le=1.0,
        description="How far ahead the embedded Temporal server reads its timers "
        "(history.timerProcessorMaxTimeShift): a timer due sooner than this fires this much "
        "late. Temporal's default of 1 s made every heartbeat timeout and retry a second late, "
        "so a dead worker's activity ran again 2 s after its heartbeat timeout; shorter reads "
        "the timer queue more often.",
    )
    health_timeout_seconds: float = 60.0
    lifecycle_accept_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How long a stop, start, restart or delete waits for a worker to take it "
        "up before it is refused as unanswered.",
    )
    lifecycle_cancel_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a delete with cancel waits for the deployments it cancelled to "
        "end before it is refused.",
    )
    lifecycle_pickup_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a stop, start, restart or delete waits for each server's worker "
        "to take up its part on that server before it is refused, naming the server's queue "
        "(a delete resumed later finishes what it began).",
    )
    keep_releases: int = Field(default=5, description="Releases kept per project for rollback.")
    phase_deadlines: dict[str, float] = Field(
        default_factory=dict, description='Seconds per phase, e.g. {"health_check": 120}.'
    )
    reconcile_interval_seconds: float = 30.0
    cleanup_full_pass_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often a cleanup pass looks at every project and the whole content "
        "store; the passes between look only at projects whose deployments changed.",
    )
    orphan_policy: str = Field(default="fail", pattern="^(fail|resume)$")
    orphan_grace_seconds: float = Field(
        default=60.0, description="How long a deployment may look orphaned before it is."
    )
    monitor_interval_seconds: float = Field(
        default=30.0, description="How often the health monitor checks active deployments."
    )
    bake_seconds: float = Field(
        default=120.0,
        description="After the switch, how long a new release is watched; unhealthy in that "
        "window, it is rolled back automatically. 0 turns the watch off.",
    )
    bake_probe_seconds: float = Field(
        default=2.0, gt=0, description="How often a baking release is looked at."
    )
    restart_limit: int = Field(
        default=3, description="Restarts within the window that make a restart loop."
    )
    restart_window_seconds: float = 600.0
    down_after_failures: int = Field(
        default=2, description="Consecutive failed checks after which a project is down."
    )
    notify_url: str | None = Field(
        default=None,
        description="Where every deployment's end is POSTed as JSON, unless its project has its "
        "own (retried; Slack-compatible: it carries a `text`).",
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Where alerts are POSTed as JSON (retried)."
    )
    work_retention_seconds: float = 3600.0
    upload_retention_seconds: float = 7 * 86400.0
    preview_ttl_seconds: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="A preview not deployed again for this long is removed by the reconciler.",
    )
    unpack_max_bytes: int = Field(
        default=GIB, ge=1, description="Largest total an upload may unpack to, in bytes."
    )
    unpack_max_files: int = Field(
        default=100_000, ge=1, description="Most files, directories and links in an upload."
    )
    unpack_max_file_bytes: int = Field(
        default=512 * MIB, ge=1, description="Largest single file in an upload, in bytes."
    )
    unpack_max_path_length: int = Field(
        default=1024, ge=16, description="Longest path in an upload, in bytes."
    )
    unpack_max_depth: int = Field(default=32, ge=2, description="Deepest path in an upload.")
    unpack_max_ratio: int = Field(
        default=200,
        ge=1,
        description="How many times its compressed size an archive may unpack to (past 64 MiB).",
    )
    git_max_bytes: int = Field(
        default=GIB, ge=1, description="Largest a project's git mirror may grow, in bytes."
    )
    git_ca_file: Path | None = Field(
        default=None, description="Extra CA certificates git trusts for HTTPS repositories."
    )
    min_free_bytes: int = Field(
        default=512 * MIB,
        ge=0,
        description="Free space a server keeps: unpacking and copying stop short of it.",
    )
    build_network: str = Field(
        default="auto",
        pattern=NETWORK_NAME,
        description="Where RUN steps of image builds connect: auto (Docker's bridge when the "
        "engine has one, else host), host (this server's network, its loopback and the "
        "control plane on it included), none, or a Docker network's name.",
    )
    build_networks_allowed: list[Annotated[str, Field(pattern=NETWORK_NAME)]] = Field(
        default_factory=list,
        description='Networks a slipway.toml [build] network may choose besides "none" and '
        'the build network, e.g. ["host"].',
    )
    registry_auth: SecretStr | None = Field(
        default=None,
        description='Credentials for pulling base images: {"<registry>": {"username": ..., '
        '"password": ...}}; a project\'s own (sealed) take precedence.',
    )
    https_port: int = Field(
        default=8443, ge=1, le=65535, description="Traefik's HTTPS entry point (custom domains)."
    )
    acme_ca: str = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        min_length=1,
        description="The ACME directory custom domains' certificates come from; Let's Encrypt's "
        "staging, for trying things out: https://acme-staging-v02.api.letsencrypt.org/directory.",
    )
    acme_email: str | None = Field(default=None, description="The ACME account's contact.")
    acme_ca_certificates: Path | None = Field(
        default=None,
        description="CA certificates (PEM) Traefik trusts for the ACME directory's HTTPS: a "
        "private ACME CA's.",
    )
    acme_certificate_hours: int = Field(
        default=2160,
        ge=1,
        description="How long the ACME CA's certificates last, in hours (Traefik's "
        "certificatesDuration): Traefik renews within a window and checks at an interval it "
        "derives from this, not from the certificates. 2160 is Let's Encrypt's 90 days: "
        "renewal in the last 30 days, checked daily. A CA issuing shorter ones needs its "
        "own: a day (24) renews in the last 6 hours, checked every 10 minutes; under a day, "
        "in the last 20 minutes, checked every minute. Left at 2160, a 24-hour certificate "
        "would be renewed only at the daily check, at best as it ends, and a renewal that "
        "failed would not be tried again for a day.",
    )
    acme_storage: Path | None = Field(
        default=None,
        description="Traefik's ACME account and certificates (mode 0600), kept so that a restart "
        "issues nothing again; default: <home>/traefik/acme.json.",
    )
    traefik_log: Path | None = Field(
        default=None,
        description="Traefik's JSON log, where a certificate's ACME error is read from; default: "
        "<home>/logs/traefik.log (the embedded stack's).",
    )
    traefik_log_scan_bytes: int = Field(
        default=4 * MIB,
        ge=4096,
        description="How much of the end of Traefik's log a monitor pass reads for ACME errors.",
    )
    access_log_max_bytes: int = Field(
        default=64 * MIB,
        ge=4096,
        description="Size at which the embedded stack rotates Traefik's access log (one older "
        "file kept, <log>.1).",
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="The worker's Prometheus endpoint (Slipway's metrics, then the Temporal "
        "SDK's); 0: off.",
    )
    metrics_address: str = Field(
        default="127.0.0.1",
        description="Where the worker's Prometheus endpoint listens (a container's own "
        "address in the compose stack).",
    )
    log_format: str = Field(
        default="text",
        pattern="^(text|json)$",
        description="text, or json: one JSON object a line, with the deployment, project, "
        "phase and Temporal ids of what it is about.",
    )
    max_domains_per_project: int = Field(
        default=50, ge=1, description="Custom domains one project may answer at."
    )
    env_max_vars: int = Field(
        default=200, ge=1, description="Most environment variables one project may set."
    )
    env_max_value_bytes: int = Field(
        default=32 * 1024, ge=1, description="Longest value of one variable, in bytes."
    )
    env_max_total_bytes: int = Field(
        default=256 * 1024,
        ge=1,
        description="Most bytes a project's variables (names and values) may hold in all.",
    )

    stuck_limit: int = Field(
        default=50,
        ge=1,
        description="Stuck deployments one page of the listing holds unless asked for another "
        "number: each is looked up in Temporal, so a page is kept short.",
    )
    stuck_max_limit: int = Field(
        default=500,
        ge=1,
        description="The most stuck deployments one page of the listing may be asked for; "
        "more is refused, and the rest are read a page at a time.",
    )

    @model_validator(mode="after")
    def _stuck_limit_within_its_maximum(self) -> "Settings":
        if self.stuck_limit > self.stuck_max_limit:
            raise ValueError(
                f"SLIPWAY_STUCK_LIMIT ({self.stuck_limit}) must not be over "
                f"SLIPWAY_STUCK_MAX_LIMIT ({self.stuck_max_limit})"
            )
        return self

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("upload_store")
    @classmethod
    def _absolute_store(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value else None

    @field_validator("registry_auth")
    @classmethod
    def _registry_auth_is_json(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            registry_auth(value.get_secret_value(), "SLIPWAY_REGISTRY_AUTH")
        return value

    @field_validator("server")
    @classmethod
    def _server_is_a_name(cls, value: str) -> str:
        return validate_server_name(value)

    @property
    def layout(self) -> Layout:
        """This server's directory tree."""
        return Layout(self.home, self.upload_store)

    @property
    def env_limits(self) -> EnvLimits:
        """The limits a project's environment is kept under."""
        return EnvLimits(
            max_vars=self.env_max_vars,
            max_value_bytes=self.env_max_value_bytes,
            max_total_bytes=self.env_max_total_bytes,
        )

    @property
    def unpack_limits(self) -> UnpackLimits:
        """The limits an upload is unpacked under."""
        return UnpackLimits(
            max_bytes=self.unpack_max_bytes,
            max_files=self.unpack_max_files,
            max_file_bytes=self.unpack_max_file_bytes,
            max_path_length=self.unpack_max_path_length,
            max_depth=self.unpack_max_depth,
            max_ratio=self.unpack_max_ratio,
            min_free_bytes=self.min_free_bytes,
        )

    @property
    def registry_logins(self) -> RegistryAuth:
        """This server's registry credentials (none when unset)."""
        if self.registry_auth is None:
            return {}
        return registry_auth(self.registry_auth.get_secret_value(), "SLIPWAY_REGISTRY_AUTH")

    @property
    def host_task_queue(self) -> str:
        """The per-server queue for activities bound to this server's files and processes."""
        return host_task_queue(self.task_queue, self.server)

    @property
    def postgres_password_file(self) -> Path:
        """The embedded PostgreSQL's password, directly in home beside its data dir: outside
        the data dir (PostgreSQL's own user owns it) and every directory that is served."""
        return self.home / "postgres.password"

    @property
    def embedded_database_url(self) -> str:
        """The embedded PostgreSQL's URL with its password (made on first use, as the
        secret key is)."""
        return credentials.url(
            self.postgres_port, credentials.password(self.postgres_password_file)
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in the form SQLAlchemy's psycopg 3 dialect expects."""
        url = self.database_url or self.embedded_database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        raise ValueError(f"SLIPWAY_DATABASE_URL must be a postgresql:// URL, not {url!r}")

    def environment(self) -> dict[str, str]:
        """These settings as `SLIPWAY_*` variables, for a child process such as a worker."""
        values = self.model_dump()
        for name, secret in (
            ("secret_key", self.secret_key),
            ("registry_auth", self.registry_auth),
        ):
            if secret is not None:
                values[name] = secret.get_secret_value()
        values["phase_deadlines"] = json.dumps(self.phase_deadlines)
        values["build_networks_allowed"] = json.dumps(self.build_networks_allowed)
        return {
            f"SLIPWAY_{name.upper()}": str(value)
            for name, value in values.items()
            if value is not None
        }

    @property
    def proxy_url(self) -> str:
        """Traefik's entry point, as this server's workers reach it."""
        return f"http://{self.proxy_address}:{self.http_port}"

    @property
    def static_url(self) -> str:
        """The static server (Caddy), as Traefik reaches it."""
        return f"http://{self.static_address}:{self.static_port}"

    @property
    def candidate_url(self) -> str:
        """Traefik's candidate entry point, as this server's workers reach it."""
        return f"http://{self.proxy_address}:{self.candidate_port}"

    def temporal_ui(self, workflow_id: str | None = None) -> str:
        """The Temporal UI's list of workflows, or one workflow in it."""
        base = (
            f"http://127.0.0.1:{self.temporal_ui_port}/namespaces/{self.temporal_namespace}"
            "/workflows"
        )
        return f"{base}/{workflow_id}" if workflow_id else base

    def project_host(self, project: str) -> str:
        """The Host a project answers at."""
        return f"{project}.{self.base_domain}"

    @field_validator("acme_ca_certificates", "acme_storage", "traefik_log")
    @classmethod
    def _absolute_traefik_paths(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value else None

    @property
    def acme_storage_path(self) -> Path:
        """Where Traefik keeps its ACME account and certificates."""
        return self.acme_storage or self.home / "traefik" / "acme.json"

    @property
    def traefik_log_path(self) -> Path:
        """Where Traefik writes its log (as JSON lines)."""
        return self.traefik_log or self.home / "logs" / "traefik.log"

    @property
    def access_log_path(self) -> Path:
        """Where Traefik writes its access log (as JSON lines), next to its own log."""
        return self.traefik_log_path.with_name("access.log")

    @property
    def secure_url(self) -> str:
        """Traefik's HTTPS entry point, as this server's workers reach it."""
        return f"https://{self.proxy_address}:{self.https_port}"


def host_task_queue(task_queue: str, server: str) -> str:
    """Name of a server's own task queue."""
    return f"{task_queue}-host-{server}"
