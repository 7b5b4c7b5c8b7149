"""Custom domains and their certificates, against real components and a real ACME CA with no
network: Debian's pebble on loopback (its DNS, pebble-challtestsrv, answers every test name
with 127.0.0.1), validating HTTP-01 challenges on this module's own Traefik."""

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.adapters.certificates import acme_certificates, own_certificates_file
from activities.adapters.hosts import Hosts, RoutedDomain
from activities.adapters.traefik import Target, render_route
from slipway import monitoring
from slipway.domain_names import DomainError, domain_name
from slipway.domains import CertificateState, DomainConflictError, DomainNotFoundError
from slipway.models import MonitorReport
from slipway.project_events import events_of
from slipway.schedules import monitor_input
from slipway.settings import Settings
from slipway.stack import components
from slipway.stack.process import Service
from slipway.tables import domains as domains_table
from slipway.workflow_ids import project_workflow_id
from starter import domains
from starter.http.app import create_app
from starter.http.config import ApiSettings
from tests.components import (
    Pebble,
    certificate_authority,
    free_port,
    issued,
    own_temp_dir,
    pebble_installed,
    require,
    web_ports,
    web_servers,
)
from tests.helpers import deploy_and_wait, make_site, wait_for
from tests.running import RunningWorker
from workflows.monitor import MonitorWorkflow
from workflows.project import ProjectWorkflow

TOKEN = f"test-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Stack:
    """This module's server: its own Traefik (trusting pebble) and Caddy, on the session's
    PostgreSQL and Temporal."""

    settings: Settings
    pebble: Pebble
    traefik: Service

    def restart_traefik(self) -> None:
        self.traefik.stop()
        self.traefik.start()
        self.traefik.wait_ready()


@pytest.fixture(scope="module")
def stack(base_settings: Settings) -> Iterator[Stack]:
    require(pebble_installed(), "no pebble (scripts/pebble installs Debian's)")
    with own_temp_dir("slipway-domains-") as root:
        http_port = free_port()
        pebble = Pebble(root / "pebble", http_port).start()
        settings = base_settings.model_copy(
            update={
                "home": root / "home",
                **web_ports(),
                "http_port": http_port,
                "acme_ca": pebble.directory,
                "acme_ca_certificates": pebble.trust,
                "acme_email": "ops@slipway.test",
            }
        )
        caddy, traefik = web_servers(settings)
        try:
            yield Stack(settings, pebble, traefik)
        finally:
            traefik.stop()
            caddy.stop()
            pebble.stop()


@pytest.fixture
def on_stack(stack: Stack) -> Settings:
    """The module's server under a name and queues of this test's own, so that a monitor
    pass looks only at this test's domains."""
    tag = uuid.uuid4().hex[:8]
    return stack.settings.model_copy(
        update={"task_queue": f"t-{tag}", "server": f"acme{tag}", "health_timeout_seconds": 5.0}
    )


@pytest.fixture
async def serving(client: Client, on_stack: Settings) -> AsyncIterator[RunningWorker]:
    async with RunningWorker(client, on_stack) as running:
        yield running


def get(settings: Settings, host: str, path: str = "/") -> httpx.Response:
    """GET through the module's Traefik over HTTP with `host`, not following redirects."""
    return httpx.get(
        f"http://127.0.0.1:{settings.http_port}{path}", headers={"Host": host}, timeout=5.0
    )


def get_secure(settings: Settings, host: str, trusted: str, path: str = "/") -> httpx.Response:
    """GET over HTTPS from 127.0.0.1 as a browser would ask for `host` (the TLS server name,
    the Host with the port), verified against the PEM root `trusted`."""
    context = ssl.create_default_context(cadata=trusted)
    with httpx.Client(verify=context, timeout=5.0) as http:
        return http.get(
            f"https://127.0.0.1:{settings.https_port}{path}",
            headers={"Host": f"{host}:{settings.https_port}"},
            extensions={"sni_hostname": host},
        )


def answering(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, False while the server does not answer (Traefik restarting)."""

    def safe() -> bool:
        try:
            return check()
        except (httpx.HTTPError, OSError):
            return False

    return safe


def served_certificate(settings: Settings, host: str) -> x509.Certificate:
    """The certificate Traefik presents for `host` (not verified: to read its serial)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", settings.https_port), timeout=5.0) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def monitor_pass(client: Client, settings: Settings) -> MonitorReport:
    return await client.execute_workflow(
        MonitorWorkflow.run,
        monitor_input(settings),
        id=f"monitor-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )


async def until_certificate(
    client: Client, engine: sa.Engine, settings: Settings, project: str, state: CertificateState
) -> domains.DomainView:
    """Monitor passes until the project's (only) domain's certificate is in `state`."""
    for _ in range(120):
        await monitor_pass(client, settings)
        [view] = domains.listed(engine, project)
        if view.certificate.state is state:
            return view
        await asyncio.sleep(0.25)
    raise AssertionError(f"{project}'s certificate never became {state}: {view}")


async def deployed(
    client: Client, settings: Settings, tmp_path: Path, project: str, text: str
) -> None:
    _, failure = await deploy_and_wait(client, settings, make_site(tmp_path / text, text), project)
    assert failure is None


def test_names_are_checked_and_kept_in_their_ascii_form() -> None:
    assert domain_name("Bücher.Example.") == "xn--bcher-kva.example"
    assert domain_name("xn--bcher-kva.example") == "xn--bcher-kva.example"
    assert domain_name("shop.EXAMPLE.com") == "shop.example.com"
    assert domain_name(f"{'a' * 63}.com") == f"{'a' * 63}.com"
    refused = {
        "*.example.com": "wildcards",
        "10.0.0.1": "IP address",
        "::1": "IP address",
        "example": "needs a dot",
        f"{'a' * 64}.com": "at most 63",
        ".".join(["abcdefghi"] * 26) + ".com": "at most 253",
        "a..com": "empty label",
        "under_score.com": "only letters, digits, hyphens",
        "ab--cd.com": "3rd and 4th place",
        "-lead.com": "begins or ends with a hyphen",
        "💩.la": "not a valid domain name",
        "example.123": "top-level domain of letters",
        "": "required",
    }
    for name, why in refused.items():
        with pytest.raises(DomainError, match=why):
            domain_name(name)


async def test_acme_certificate_from_pebble_https_redirects_and_a_restart_keeps_it(
    client: Client,
    engine: sa.Engine,
    stack: Stack,
    on_stack: Settings,
    serving: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    settings = on_stack
    await deployed(client, settings, tmp_path, project, "hello")
    name = f"Bücher-{uuid.uuid4().hex[:6]}.test"
    view, created = await domains.add(client, engine, settings, project, name, redirect_www=True)
    ascii_name = view.name
    assert created and ascii_name.startswith("xn--") and view.unicode_name == name.lower()
    assert view.certificate.state is CertificateState.PENDING

    # Without a redeploy, the domain answers over HTTP at once (its certificate is pending).
    await wait_for("the domain's route", lambda: "hello" in get(settings, ascii_name).text)
    assert "hello" in get(settings, settings.project_host(project)).text

    view = await until_certificate(client, engine, settings, project, CertificateState.ISSUED)
    assert view.certificate.expires_at is not None
    assert view.certificate.expires_at > datetime.now(UTC) + timedelta(days=1)
    # Issued: the route is rendered again, and its HTTP now redirects to HTTPS.
    secure = f"https://{ascii_name}:{settings.https_port}/"
    await wait_for(
        "the redirect", lambda: get(settings, ascii_name).headers.get("location") == secure
    )
    assert get(settings, ascii_name).status_code in (301, 308)

    root = stack.pebble.issuing_root()
    answer = get_secure(settings, ascii_name, root)
    assert answer.status_code == 200 and "hello" in answer.text
    www = get_secure(settings, f"www.{ascii_name}", root, "/page?x=1")
    assert www.status_code in (301, 308)
    assert www.headers["location"] == f"https://{ascii_name}:{settings.https_port}/page?x=1"
    assert "hello" in get(settings, settings.project_host(project)).text, "the base name stays HTTP"

    # The ACME storage is kept: a restart serves the same certificate, issuing none again.
    before = served_certificate(settings, ascii_name).serial_number
    stored = [
        c.serial for c in acme_certificates(settings.acme_storage_path) if c.main == ascii_name
    ]
    assert stored == [before]
    assert settings.acme_storage_path.stat().st_mode & 0o777 == 0o600
    stack.restart_traefik()
    await wait_for(
        "HTTPS after the restart",
        answering(lambda: get_secure(settings, ascii_name, root).is_success),
    )
    assert served_certificate(settings, ascii_name).serial_number == before
    assert [
        c.serial for c in acme_certificates(settings.acme_storage_path) if c.main == ascii_name
    ] == [before]

    kinds = [e.kind for e in events_of(engine, project)]
    assert {"domain", "routes", "certificate"} <= set(kinds)


async def test_a_certificate_that_cannot_be_issued_says_why_and_alerts_once(
    client: Client,
    engine: sa.Engine,
    stack: Stack,
    on_stack: Settings,
    serving: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    settings = on_stack
    await deployed(client, settings, tmp_path, project, "still-here")
    name = f"unreachable-{uuid.uuid4().hex[:6]}.test"
    # Pebble looks for the challenge at an address nothing listens on.
    stack.pebble.answer(name, "127.0.0.2")
    await domains.add(client, engine, settings, project, name)
    await wait_for("the domain's route", lambda: "still-here" in get(settings, name).text)

    view = await until_certificate(client, engine, settings, project, CertificateState.FAILED)
    assert view.certificate.error is not None
    assert "127.0.0.2" in view.certificate.error and "connection" in view.certificate.error
    for _ in range(3):
        await monitor_pass(client, settings)
    alerts = [a for a in monitoring.list_alerts(engine, project) if a.kind == "certificate"]
    assert len(alerts) == 1, alerts
    assert name in alerts[0].message and "HTTP" in alerts[0].message
    refusals = [e for e in events_of(engine, project) if e.kind == "certificate"]
    assert len(refusals) == 1 and "127.0.0.2" in refusals[0].message
    # It still answers over HTTP, without redirecting.
    answer = get(settings, name)
    assert answer.status_code == 200 and "still-here" in answer.text


async def test_health_check_proves_every_domain_and_removing_one_needs_no_redeploy(
    client: Client,
    engine: sa.Engine,
    on_stack: Settings,
    serving: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    settings = on_stack
    await deployed(client, settings, tmp_path, project, "one")
    name = f"proven-{uuid.uuid4().hex[:6]}.test"
    await domains.add(client, engine, settings, project, name)
    await wait_for("the domain's route", lambda: "one" in get(settings, name).text)

    # Something else answers for the domain: the next release cannot prove itself there.
    hijack = settings.layout.routes / f"hijack-{project}.yml"
    hijack.write_text(
        "http:\n  routers:\n    hijack-" + project + ":\n"
        f"      rule: Host(`{name}`)\n      priority: 1000000\n      service: nowhere-{project}\n"
        f"  services:\n    nowhere-{project}:\n      loadBalancer:\n"
        f"        servers: [{{url: 'http://127.0.0.1:{free_port()}'}}]\n"
    )
    try:
        await wait_for("the hijack", lambda: get(settings, name).status_code == 502)
        _, failure = await deploy_and_wait(
            client, settings, make_site(tmp_path / "two", "two"), project
        )
        assert failure is not None and name in failure, failure
        assert "one" in get(settings, settings.project_host(project)).text
    finally:
        hijack.unlink()
    await wait_for("the domain again", lambda: "one" in get(settings, name).text)

    removed = await domains.remove(client, engine, settings, project, name)
    assert removed.name == name
    await wait_for("the domain gone", lambda: get(settings, name).status_code == 404)
    assert "one" in get(settings, settings.project_host(project)).text
    assert domains.listed(engine, project) == []
    messages = [e.message for e in events_of(engine, project) if e.kind == "domain"]
    assert any("removed" in m for m in messages) and any("added" in m for m in messages)

    # The serializer's history, refreshes between deployments included, replays.
    history = await client.get_workflow_handle(project_workflow_id(project)).fetch_history()
    assert any(
        e.workflow_execution_signaled_event_attributes.signal_name == "routes_changed"
        for e in history.events
    )
    await Replayer(
        workflows=[ProjectWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)


@pytest.fixture
def http_app(on_stack: Settings, client: Client, engine: sa.Engine) -> FastAPI:
    api = ApiSettings(token=SecretStr(TOKEN))
    return create_app(on_stack, api, client=client, engine=engine)


@pytest.fixture
async def http(http_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=http_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api.test", headers=AUTH, timeout=60
    ) as http:
        yield http


async def test_claims_and_names_over_http(
    client: Client,
    engine: sa.Engine,
    on_stack: Settings,
    serving: RunningWorker,
    http: httpx.AsyncClient,
    project: str,
    tmp_path: Path,
) -> None:
    settings = on_stack
    other = f"{project}-b"
    await deployed(client, settings, tmp_path, project, "first")
    await deployed(client, settings, tmp_path, other, "second")
    name = f"claimed-{uuid.uuid4().hex[:6]}.test"

    added = await http.post(f"/api/projects/{project}/domains", json={"name": name})
    assert added.status_code == 201, added.text
    assert added.headers["location"] == f"/api/projects/{project}/domains/{name}"
    assert added.json()["certificate"]["state"] == "pending"
    again = await http.post(
        f"/api/projects/{project}/domains", json={"name": name, "redirectWww": True}
    )
    assert again.status_code == 200 and again.json()["redirectWww"] is True
    second = await http.post(f"/api/projects/{other}/domains", json={"name": name})
    assert second.status_code == 409
    assert second.json()["detail"] == f"{name} is already a domain of project {project}"
    www = await http.post(f"/api/projects/{other}/domains", json={"name": f"www.{name}"})
    assert www.status_code == 409 and f"redirects to {name}" in www.json()["detail"]
    base = await http.post(
        f"/api/projects/{other}/domains", json={"name": f"x.{settings.base_domain}.test"}
    )
    assert base.status_code == 201, "only names under the base domain itself are Slipway's"
    with pytest.raises(DomainConflictError, match="where Slipway names its projects"):
        await domains.add(client, engine, settings, other, f"shop.{project}.{settings.base_domain}")

    for invalid in ("*.example.com", "127.0.0.1", "UPPER.test", "no-dot", "a_b.test", "é.test"):
        refused = await http.post(f"/api/projects/{project}/domains", json={"name": invalid})
        assert refused.status_code == 422, (invalid, refused.text)
        assert refused.json()["detail"].startswith("name: ")
    longest = ".".join(["a" * 61] * 4) + ".aa"
    assert len(longest) == 250
    www_too_long = await http.post(
        f"/api/projects/{project}/domains", json={"name": longest, "redirectWww": True}
    )
    assert www_too_long.status_code == 422 and "redirectWww" in www_too_long.json()["detail"]
    unknown = await http.post(f"/api/projects/nobody-{project}/domains", json={"name": "a.test"})
    assert unknown.status_code == 404
    with pytest.raises(DomainNotFoundError):
        domains.listed(engine, f"nobody-{project}")

    listed = (await http.get(f"/api/projects/{project}/domains")).json()
    assert [d["name"] for d in listed] == [name]
    everyone = {d["name"]: d["project"] for d in (await http.get("/api/domains")).json()}
    assert everyone[name] == project
    one = await http.get(f"/api/projects/{project}/domains/{name}")
    assert one.status_code == 200 and one.json()["project"] == project
    assert (await http.get(f"/api/projects/{other}/domains/{name}")).status_code == 404
    gone = await http.delete(f"/api/projects/{project}/domains/{name}")
    assert gone.status_code == 200
    assert (await http.delete(f"/api/projects/{project}/domains/{name}")).status_code == 404
    # Freed, the name can be claimed by the other project.
    moved = await http.post(f"/api/projects/{other}/domains", json={"name": name})
    assert moved.status_code == 201
    await wait_for("the name on its new project", lambda: "second" in get(settings, name).text)

    limited = settings.model_copy(update={"max_domains_per_project": 2})
    with pytest.raises(DomainConflictError, match="SLIPWAY_MAX_DOMAINS_PER_PROJECT"):
        await domains.add(client, engine, limited, other, f"third-{uuid.uuid4().hex[:6]}.test")


async def test_a_certificate_of_its_own_is_checked_sealed_and_served(
    client: Client,
    engine: sa.Engine,
    on_stack: Settings,
    serving: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    settings = on_stack
    await deployed(client, settings, tmp_path, project, "owned")
    name = f"own-{uuid.uuid4().hex[:6]}.test"
    ca = certificate_authority("a project's own CA")
    trusted = ca[0].public_bytes(serialization.Encoding.PEM).decode()
    chain, key = issued(ca, [name, f"www.{name}"])

    _, other_key = issued(ca, [name])
    expired, expired_key = issued(
        ca,
        [name],
        not_before=datetime.now(UTC) - timedelta(days=3),
        not_after=datetime.now(UTC) - timedelta(days=1),
    )
    only_bare, only_bare_key = issued(ca, [name])
    other_ca = certificate_authority("an unrelated CA")[0].public_bytes(serialization.Encoding.PEM)
    for certificate, given_key, www, why in (
        (chain, other_key, False, "key: it is not the key"),
        (expired, expired_key, False, "expired"),
        (only_bare, only_bare_key, True, f"not valid for www.{name}"),
        ("not a certificate", key, False, "certificate: not a PEM"),
        (chain, "not a key", False, "key: not a PEM"),
        (chain + other_ca.decode(), key, False, "is not issued by #2"),
    ):
        with pytest.raises(domains.CertificateError, match=why):
            await domains.add(
                client,
                engine,
                settings,
                project,
                name,
                redirect_www=www,
                certificate=certificate,
                key=given_key,
            )
    assert domains.listed(engine, project) == []

    view, created = await domains.add(
        client, engine, settings, project, name, redirect_www=True, certificate=chain, key=key
    )
    assert created and view.certificate.source == "own"
    assert view.certificate.state is CertificateState.ISSUED
    assert view.certificate.expires_at is not None

    # Served at once over HTTPS, its HTTP redirecting there, www. to the bare name.
    await wait_for(
        "HTTPS with its own certificate",
        answering(lambda: "owned" in get_secure(settings, name, trusted).text),
    )
    assert get(settings, name).status_code in (301, 308)
    www = get_secure(settings, f"www.{name}", trusted)
    assert www.headers["location"] == f"https://{name}:{settings.https_port}/"
    assert own_certificates_file(settings.layout, project).stat().st_mode & 0o777 == 0o600
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(domains_table.c.sealed_key, domains_table.c.own_certificate).where(
                domains_table.c.name == name
            )
        ).one()
    assert "PRIVATE KEY" not in stored.sealed_key and "BEGIN CERTIFICATE" in stored.own_certificate
    assert all("PRIVATE KEY" not in e.message for e in events_of(engine, project))


async def test_traefik_renews_a_certificate_near_its_end(base_settings: Settings) -> None:
    """Pebble issues certificates for ten minutes here, and Traefik (3.7) is told they last an
    hour (`acme_certificate_hours`): for certificates under a day it renews within their last
    twenty minutes, trying when it starts and then every minute. Left at its 90 days, it
    would try at start and then only a day later. The try at start races the loading of its
    HTTP-01 challenge router: when pebble asks before the router serves the web entry point
    (under load), pebble gets a 404 and refuses; pebble also reuses the first, still valid
    authorization half the time, and then no challenge is needed. So the renewal comes at
    start or at the next minute's try; the new certificate is served, and it is what the
    monitor reads from the ACME storage. A failure ends with Traefik's log, which names the
    CA's reason."""
    require(pebble_installed(), "no pebble (scripts/pebble installs Debian's)")
    with own_temp_dir("slipway-renewal-") as root:
        http_port = free_port()
        pebble = Pebble(root / "pebble", http_port, validity_seconds=600).start()
        settings = base_settings.model_copy(
            update={
                "home": root / "home",
                **web_ports(),
                "http_port": http_port,
                "acme_ca": pebble.directory,
                "acme_ca_certificates": pebble.trust,
                "acme_email": "ops@slipway.test",
                "acme_certificate_hours": 1,
            }
        )
        traefik = components.traefik(settings)
        try:
            traefik.start()
            traefik.wait_ready()
            name = "renewed.test"
            hosts = Hosts(
                base="renew.localhost",
                domains=[RoutedDomain(name=name)],
                https_port=settings.https_port,
            )
            target = Target(url=f"http://127.0.0.1:{free_port()}")
            config, _ = render_route("renew", hosts, target, target, uuid.uuid4().bytes)
            settings.layout.served_route("renew").write_text(config)

            def stored() -> list[int]:
                found = acme_certificates(settings.acme_storage_path)
                return [c.serial for c in found if c.main == name]

            await wait_for("the first certificate", lambda: stored(), timeout=60)
            [first] = stored()
            await wait_for(
                "it served",
                answering(lambda: served_certificate(settings, name).serial_number == first),
                timeout=30,
            )
            traefik.stop()
            traefik.start()
            traefik.wait_ready()
            # At start, or a minute later when the challenge at start found no router.
            await wait_for("the renewal", lambda: stored() and stored() != [first], timeout=90)
            [renewed] = stored()
            await wait_for(
                "the renewed one served",
                answering(lambda: served_certificate(settings, name).serial_number == renewed),
                timeout=30,
            )
            ends = {c.serial: c.not_after for c in acme_certificates(settings.acme_storage_path)}
            assert ends[renewed] > datetime.now(UTC)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\nTraefik's log:\n{traefik.tail()}") from failure
        finally:
            traefik.stop()
            pebble.stop()
