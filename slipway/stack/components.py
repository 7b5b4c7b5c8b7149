"""The services of the embedded stack, each configured from the settings."""

import os
import sys

import yaml

from slipway.search_attributes import ALL as SEARCH_ATTRIBUTES
from slipway.settings import Settings
from slipway.stack.binaries import binary
from slipway.stack.confine import no_links_under
from slipway.stack.postgres import postgres_service
from slipway.stack.probes import http_ok, tcp_open
from slipway.stack.process import Service
from slipway.static_server import config_file, write_config

__all__ = ["caddy", "postgres_service", "temporal", "traefik", "worker"]


def temporal(settings: Settings, port: int) -> Service:
    """The Temporal dev server with its UI, persisting to a SQLite file under home; its
    timers fire within `temporal_timer_shift_seconds` of when they are due."""
    data = settings.home / "temporal"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--ui-disable-news-fetch",
        "--db-filename",
        str(data / "temporal.db"),
        "--log-level",
        "warn",
        "--dynamic-config-value",
        f'history.timerProcessorMaxTimeShift="{settings.temporal_timer_shift_seconds * 1000:g}ms"',
    ]
    for key in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{key.name}=Keyword"]
    return Service(
        name="temporal",
        argv=argv,
        log=settings.home / "logs" / "temporal.log",
        ready=lambda: tcp_open(port) and tcp_open(settings.temporal_ui_port),
        address=f"127.0.0.1:{port} (UI http://127.0.0.1:{settings.temporal_ui_port})",
    )


def traefik(settings: Settings) -> Service:
    """Traefik on loopback, routes from the file provider's watched directory. Its API and
    dashboard are off: apps share the loopback, and the API would show them every route and
    backend; the admin entry point serves only the ping readiness uses.

    Custom domains are served on the HTTPS entry point with certificates from the ACME CA
    (`SLIPWAY_ACME_CA`), obtained through the HTTP-01 challenge on the web entry point and
    kept in `SLIPWAY_ACME_STORAGE` so that a restart issues nothing again; when and how often
    it looks for certificates to renew follows `SLIPWAY_ACME_CERTIFICATE_HOURS`. Its log is
    JSON: the monitor reads why a certificate was refused from it, per domain.

    Its Prometheus metrics (requests by entry point, router and service; the base names of
    projects without routers of their own share one router) answer on the admin entry
    point's `/metrics`; its access log is JSON lines naming each request's host, request
    headers left out, rotated by the supervisor at `SLIPWAY_ACCESS_LOG_MAX_BYTES`."""
    root = settings.home / "traefik"
    dynamic = root / "dynamic"
    dynamic.mkdir(parents=True, exist_ok=True)
    settings.acme_storage_path.parent.mkdir(parents=True, exist_ok=True)
    config = root / "traefik.yml"
    hardened = {
        "aliasHeadersStrategy": "delete",
        "encodedCharacters": {
            "allowEncodedSlash": False,
            "allowEncodedBackSlash": False,
            "allowEncodedNullCharacter": False,
        },
    }
    acme = {
        "caServer": settings.acme_ca,
        "storage": str(settings.acme_storage_path),
        "certificatesDuration": settings.acme_certificate_hours,
        "httpChallenge": {"entryPoint": "web"},
        **({"email": settings.acme_email} if settings.acme_email else {}),
    }
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{settings.http_port}", "http": hardened},
            "candidate": {"address": f"127.0.0.1:{settings.candidate_port}", "http": hardened},
            "websecure": {"address": f"127.0.0.1:{settings.https_port}", "http": hardened},
            "traefik": {"address": f"127.0.0.1:{settings.traefik_admin_port}", "http": hardened},
        },
        "ping": {"entryPoint": "traefik"},
        "providers": {
            "providersThrottleDuration": f"{settings.traefik_reload_throttle_seconds * 1000:g}ms",
            "file": {"directory": str(dynamic), "watch": True},
        },
        "certificatesResolvers": {"slipway": {"acme": acme}},
        "log": {"level": "WARN", "format": "json"},
        "metrics": {
            "prometheus": {
                "entryPoint": "traefik",
                "addRoutersLabels": True,
                "addServicesLabels": True,
            }
        },
        "accessLog": {
            "filePath": str(settings.access_log_path),
            "format": "json",
            "fields": {"headers": {"defaultMode": "drop"}},
        },
    }
    config.write_text(yaml.safe_dump(static, sort_keys=False))
    trusted = settings.acme_ca_certificates
    return Service(
        name="traefik",
        argv=[binary("traefik"), f"--configFile={config}"],
        log=settings.traefik_log_path,
        ready=lambda: http_ok(f"http://127.0.0.1:{settings.traefik_admin_port}/ping"),
        address=f"http://127.0.0.1:{settings.http_port}, https://127.0.0.1:{settings.https_port} "
        "(API and dashboard off)",
        env={**os.environ, "LEGO_CA_CERTIFICATES": str(trusted)} if trusted else None,
        rotated=settings.access_log_path,
        rotate_bytes=settings.access_log_max_bytes,
    )


def caddy(settings: Settings) -> Service:
    """Caddy serving each project's releases through its slot links; Traefik names the
    project and the slot (`current`, or `next` for a candidate) in headers Caddy accepts
    only in their valid forms, and each release is served under its own `[static]` rules
    (see `static_server`). It follows no link under `sites` (see `confine`); its admin
    endpoint is a unix socket in a directory private to Slipway's user."""
    root = settings.home / "caddy"
    root.mkdir(parents=True, exist_ok=True)
    layout = settings.layout
    layout.slots.mkdir(parents=True, exist_ok=True)
    write_config(settings)
    env = {**os.environ, "XDG_DATA_HOME": str(root / "data"), "XDG_CONFIG_HOME": str(root)}
    argv = [binary("caddy"), "run", "--config", str(config_file(settings.home))]
    return Service(
        name="caddy",
        argv=no_links_under(layout.sites, argv),
        log=settings.home / "logs" / "caddy.log",
        ready=lambda: tcp_open(settings.static_port),
        address=f"http://127.0.0.1:{settings.static_port} (static files, behind Traefik)",
        env=env,
    )


def worker(settings: Settings, database_url: str) -> Service:
    """A worker process for this server, configured through the environment."""
    env = {**os.environ, **settings.environment(), "SLIPWAY_DATABASE_URL": database_url}
    return Service(
        name="worker",
        argv=[sys.executable, "-m", "worker"],
        log=settings.home / "logs" / "worker.log",
        ready=lambda: True,
        address=f"task queues {settings.task_queue}, {settings.host_task_queue}"
        + (f"; metrics :{settings.metrics_port}" if settings.metrics_port else ""),
        env=env,
    )
