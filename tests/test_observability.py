"""Metrics, logs and access logs against the real components: the worker's and the API's
Prometheus endpoints after one deployment that went active and one that failed, Traefik's
metrics and access log, and the Grafana dashboard against a real scrape."""

import asyncio
import io
import json
import logging
import re
import tarfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
import yaml
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from temporalio.client import Client

from activities.adapters.traefik import SHARED
from slipway import logs, tracing
from slipway.models import DeploymentInput
from slipway.settings import Settings
from slipway.stack import components
from slipway.temporal import connect
from slipway.workflow_ids import deployment_workflow_id
from starter.http.app import create_app, server_config
from starter.http.config import ApiSettings
from tests.components import free_port, web_ports
from tests.helpers import (
    SUCCESS_TRANSITIONS,
    deploy_and_wait,
    fetch,
    make_site,
    outcome,
    transitions,
    wait_for,
)
from tests.running import RunningWorker, worker_process
from worker import expose_metrics
from workflows.deployment import DeploymentWorkflow

TOKEN = f"test-{uuid.uuid4().hex}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def pack(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of `files`, names as given (an upload may name anything)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def site_archive(root: Path) -> bytes:
    return pack({p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.*")})


ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "slipway.json"
METRIC = re.compile(r"\b((?:slipway|temporal|traefik)_[a-z0-9_]+)")


def dashboard_metrics() -> set[str]:
    """Every metric name the dashboard's queries name."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return {name for expr in exprs for name in METRIC.findall(expr)}


@dataclass
class Observed:
    """A worker exposing its metrics, its client, and the API in process."""

    worker_url: str
    client: Client
    http: httpx.AsyncClient
    settings: Settings

    def worker_scrape(self) -> str:
        with urllib.request.urlopen(self.worker_url, timeout=10) as answer:
            return str(answer.read().decode())

    async def api_scrape(self) -> str:
        answer = await self.http.get("/metrics")
        assert answer.status_code == 200, answer.text
        return answer.text


@pytest.fixture
async def observed(settings: Settings, engine: sa.Engine) -> AsyncIterator[Observed]:
    """The worker as `python -m worker` runs it, metrics on, and the API over its client."""
    settings = settings.model_copy(update={"metrics_port": free_port()})
    runtime, endpoint = expose_metrics(settings)
    assert runtime is not None and endpoint is not None
    client = await connect(settings, runtime)
    app: FastAPI = create_app(
        settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine
    )
    try:
        async with (
            RunningWorker(client, settings),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://api.test",
                headers=AUTH,
                timeout=60,
            ) as http,
        ):
            yield Observed(
                f"http://127.0.0.1:{settings.metrics_port}/metrics", client, http, settings
            )
    finally:
        endpoint.close()


async def deploy_over_http(observed: Observed, archive: bytes, project: str) -> str:
    answer = await observed.http.post(
        "/api/deployments",
        files={"file": ("site.tar.gz", archive, "application/gzip")},
        data={"project": project},
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


WORK = [
    "queued",
    "pulling_source",
    "building",
    "copying_files",
    "creating_symlinks",
    "updating_routes",
    "health_check",
]


async def test_metrics_move_by_exactly_one_active_and_one_failed_deployment(
    observed: Observed, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    before_worker, before_api = parse(observed.worker_scrape()), parse(await observed.api_scrape())

    site = make_site(tmp_path / "site", "measured", extra_files=3)
    good = await deploy_over_http(observed, site_archive(site), project)
    assert await outcome(observed.client, good) is None
    bad_project = f"{project}-bad"
    bad = await deploy_over_http(observed, pack({"../escape.html": b"x"}), bad_project)
    failure = await outcome(observed.client, bad)
    assert failure is not None
    assert transitions(engine, bad)[-1].startswith("Phase transition: failed")

    scrapes = [
        (before_worker, parse(observed.worker_scrape())),
        (before_api, parse(await observed.api_scrape())),
    ]
    for before, after in scrapes:

        def moved(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)  # noqa: B023

        assert moved("slipway_deployments_started_total", project=project) == 1
        assert moved("slipway_deployments_started_total", project=bad_project) == 1
        assert moved("slipway_deployments_ended_total", project=project, status="active") == 1
        assert moved("slipway_deployments_ended_total", project=project, status="failed") == 0
        assert moved("slipway_deployments_ended_total", project=bad_project, status="failed") == 1
        assert moved("slipway_deployment_failures_total", phase="pulling_source") == 1
        assert moved("slipway_deployment_failures_total") == 1
        # Each phase that ended was observed once: all of the good one's, the bad one's
        # queued and pulling_source.
        for phase in WORK:
            expected = 2 if phase in ("queued", "pulling_source") else 1
            assert moved("slipway_deployment_phase_duration_seconds_count", phase=phase) == (
                expected
            ), phase
        assert moved("slipway_deployment_phase_duration_seconds_count") == len(WORK) + 2
        assert moved("slipway_deployment_phase_duration_seconds_count", type="static") >= 1
        assert moved("slipway_phase_transitions_total", phase="active") == 1
        assert moved("slipway_phase_transitions_total", phase="failed") == 1
        assert moved("slipway_copy_files_total") == 4
        assert moved("slipway_copy_bytes_total") == sum(p.stat().st_size for p in site.rglob("*.*"))
        assert moved("slipway_health_check_probe_seconds_count", target="candidate") >= 1
        assert (
            moved(
                "slipway_api_requests_total",
                method="POST",
                route="/api/deployments",
                status="202",
            )
            == 2
        )
        assert total(after, "slipway_deployments_in_progress", phase="queued") >= 0
        assert {
            dict(k[1]).get("phase") for k in after if k[0] == "slipway_deployments_in_progress"
        } >= (set(WORK))
    assert "measured" in fetch(observed.settings, project).text

    # The worker's one endpoint carries the Temporal SDK's metrics after Slipway's.
    worker_text = observed.worker_scrape()
    assert "temporal_workflow_task_schedule_to_start_latency" in worker_text
    assert "temporal_activity_execution_latency" in worker_text
    # Every metric the dashboard queries is in a real scrape of this stack.
    traefik = httpx.get(f"http://127.0.0.1:{observed.settings.traefik_admin_port}/metrics")
    scraped = {
        name
        for text in (worker_text, await observed.api_scrape(), traefik.text)
        for name, _ in parse(text)
    }
    queried = dashboard_metrics()
    assert queried - scraped == set()
    assert {"slipway_deployments_ended_total", "traefik_router_requests_total"} <= queried
    # The API's /metrics needs the token like the rest.
    refused = await observed.http.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401


async def test_a_json_worker_logs_each_transition_and_failure_with_its_ids(
    client: Client, settings: Settings, engine: sa.Engine, project: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"log_format": "json", "metrics_port": free_port()})
    secret = f"s3cret-{uuid.uuid4().hex}"
    service = worker_process(settings, "json-worker")
    try:
        good, failure = await deploy_and_wait(
            client, settings, make_site(tmp_path / "site", "logged"), project, env={"KEY": secret}
        )
        assert failure is None
        bad = str(uuid.uuid4())
        await client.start_workflow(
            DeploymentWorkflow.run,
            DeploymentInput(
                deployment_id=bad,
                project=project,
                upload_id="0" * 32,
                host_queue=settings.host_task_queue,
            ),
            id=deployment_workflow_id(bad),
            task_queue=settings.task_queue,
        )
        reason = await outcome(client, bad)
        assert reason is not None and "not in the upload store" in reason
        # The real worker's one endpoint: Slipway's metrics, then the SDK's.
        with urllib.request.urlopen(
            f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=10
        ) as answer:
            scraped = answer.read().decode()
        assert "slipway_deployments_ended_total" in scraped
        assert "temporal_workflow_task_schedule_to_start_latency" in scraped
    finally:
        service.stop()

    text = service.log.read_text()
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    def of(deployment_id: str) -> list[dict[str, object]]:
        return [line for line in lines if line.get("deployment_id") == deployment_id]

    moves = [line for line in of(good) if str(line["message"]).startswith("Phase transition")]
    # queued was recorded where the deployment was submitted: here, not in the worker.
    assert [line["message"] for line in moves] == SUCCESS_TRANSITIONS[1:]
    for line in moves:
        assert line["project"] == project and line["phase"] in str(line["message"])
        assert line["workflow_id"] and line["run_id"]
    assert {line["workflow_id"] for line in moves} == {deployment_workflow_id(good)}

    failed = [line for line in of(bad) if line["phase"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["level"] == "warning" and failed[0]["failed_phase"] == "pulling_source"
    assert "not in the upload store" in str(failed[0]["message"])
    assert failed[0]["workflow_id"] == deployment_workflow_id(bad)


async def test_traefik_counts_and_logs_a_request_to_a_deployed_site(
    client: Client, settings: Settings, worker: RunningWorker, project: str, tmp_path: Path
) -> None:
    _, failure = await deploy_and_wait(client, settings, make_site(tmp_path, "seen"), project)
    assert failure is None
    marker = f"/?seen={uuid.uuid4().hex}"
    assert fetch(settings, project, marker).status_code == 200

    def logged() -> list[dict[str, object]]:
        if not settings.access_log_path.exists():
            return []
        lines = settings.access_log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if marker in line]

    await wait_for("the access log line", logged, timeout=10)
    [line] = logged()
    assert line["RequestHost"] == settings.project_host(project)
    assert line["DownstreamStatus"] == 200 and line["RequestPath"] == marker
    assert not any(key.startswith("request_") for key in line), "request headers are dropped"

    metrics = httpx.get(f"http://127.0.0.1:{settings.traefik_admin_port}/metrics", timeout=5)
    assert metrics.status_code == 200
    scraped = parse(metrics.text)
    router_requests = {
        dict(labels)["router"]: value
        for (name, labels), value in scraped.items()
        if name == "traefik_router_requests_total" and dict(labels).get("code") == "200"
    }
    # A project without routers of its own counts in the shared route's public router; the
    # access log above names its host.
    assert router_requests.get(f"{SHARED}_current@file", 0) >= 1, router_requests


def test_the_supervisor_rotates_traefiks_access_log(
    base_settings: Settings, tmp_path: Path
) -> None:
    settings = base_settings.model_copy(
        update={
            "home": tmp_path / "home",
            **web_ports(),
            "traefik_log": tmp_path / "traefik" / "traefik.log",
            "access_log_max_bytes": 4096,
        }
    )
    traefik = components.traefik(settings)
    traefik.start()
    try:
        traefik.wait_ready()
        log = settings.access_log_path
        assert not traefik.rotate(), "nothing to rotate yet"
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            while not log.exists() or log.stat().st_size < settings.access_log_max_bytes:
                http.get("/before")
            assert traefik.rotate()
            assert log.with_name("access.log.1").stat().st_size >= 4096
            http.get("/after")
            deadline = time.monotonic() + 10
            while not (log.exists() and "/after" in log.read_text()):
                assert time.monotonic() < deadline, "Traefik did not reopen its access log"
                http.get("/after")
                time.sleep(0.05)
        # Lines written before Traefik reopened it went to the moved file, none after.
        assert "/before" not in log.read_text()
    finally:
        traefik.stop()


def test_the_dashboard_and_the_compose_services_hold_together() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(set(titles)) == len(titles)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(titles)
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    uid = datasources[0]["uid"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/slipway.yml").read_text()
    )["providers"][0]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0] for volume in services["grafana"]["volumes"]
    }
    assert (ROOT / mounts[provider["options"]["path"]] / "slipway.json") == DASHBOARD
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert datasources[0]["url"] == "http://prometheus:9090"
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name

    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert (
        "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (services["prometheus"]["volumes"])
    )
    worker_env = services["worker"]["environment"]
    exposed = {
        "worker": worker_env["SLIPWAY_METRICS_PORT"],
        "api": "3001",
        "traefik": yaml.safe_load((ROOT / "deploy" / "traefik.yml").read_text())["entryPoints"][
            "traefik"
        ]["address"].lstrip(":"),
        "temporal": services["temporal"]["environment"]["PROMETHEUS_ENDPOINT"].split(":")[1],
    }
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {f"{name}:{port}" for name, port in exposed.items()}
    [api_job] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "slipway-api"]
    assert api_job["authorization"]["credentials_file"] in " ".join(
        services["prometheus"]["command"]
    )


PHASE_ACTIVITIES = [
    "pull_source",
    "build",
    "copy_files",
    "stage_release",
    "update_routes",
    "health_check",
    "activate",
]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for what starts in this test, into memory; off again after it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(None)
        provider.shutdown()


async def test_one_trace_runs_from_the_request_through_the_workflow_and_every_phase(
    spans: InMemorySpanExporter,
    settings: Settings,
    engine: sa.Engine,
    project: str,
    tmp_path: Path,
) -> None:
    client = await connect(settings)
    app = create_app(settings, ApiSettings(token=SecretStr(TOKEN)), client=client, engine=engine)
    async with (
        RunningWorker(client, settings),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=AUTH
        ) as http,
    ):
        answer = await http.post(
            "/api/deployments",
            files={"file": ("site.tar.gz", site_archive(make_site(tmp_path, "traced")), "x")},
            data={"project": project},
        )
        assert answer.status_code == 202, answer.text
        deployment_id = answer.json()["id"]
        assert await outcome(client, deployment_id) is None

    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    [request] = [
        s for s in finished if s.name == "POST /api/deployments" and s.kind is SpanKind.SERVER
    ]
    assert request.attributes is not None
    assert request.attributes[tracing.DEPLOYMENT_ID] == deployment_id
    assert request.attributes[tracing.PROJECT] == project
    trace_id = request.context.trace_id

    def ancestry(span: ReadableSpan) -> list[str]:
        """The names from `span` up to its trace's root."""
        names = [span.name]
        while span.parent is not None:
            parent = by_id.get(span.parent.span_id)
            assert parent is not None, f"{span.name}'s parent was not exported"
            names.append(parent.name)
            span = parent
        return names

    [workflow] = [s for s in finished if s.name == "RunWorkflow:DeploymentWorkflow"]
    assert workflow.context.trace_id == trace_id
    path = ancestry(workflow)
    assert path == [
        "RunWorkflow:DeploymentWorkflow",
        "StartWorkflow:DeploymentWorkflow",
        "SubmitDeployment",
        "POST /api/deployments",
    ]
    assert not [s for s in finished if "ProjectWorkflow" in s.name], "nothing else ran first"

    for name in PHASE_ACTIVITIES:
        [ran] = [s for s in finished if s.name == f"RunActivity:{name}"]
        assert ran.context.trace_id == trace_id, name
        up = ancestry(ran)
        # Temporal's interceptor parents what a workflow starts, like the workflow's own run,
        # on the span that started the workflow.
        assert up == [f"RunActivity:{name}", f"StartActivity:{name}", *path[1:]], name
        assert ran.attributes is not None
        assert ran.attributes[tracing.DEPLOYMENT_ID] == deployment_id, name
        assert ran.attributes[tracing.PROJECT] == project, name


def test_tracing_is_off_without_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.start("slipway-test")
    assert tracing.provider() is None
    assert tracing.client_interceptors() == [] and tracing.worker_interceptors() == []


async def test_the_api_logs_json_lines_with_the_token_masked(
    settings: Settings, client: Client, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server as `slipway api` runs it with SLIPWAY_LOG_FORMAT=json."""
    settings = settings.model_copy(update={"log_format": "json"})
    api = ApiSettings(token=SecretStr(TOKEN), port=free_port())
    config = server_config(create_app(settings, api, client=client, engine=engine), api)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}") as browser:
            assert (await browser.get(f"/?token={TOKEN}")).status_code == 303
            assert (await browser.get("/healthz")).status_code == 200
    finally:
        server.should_exit = True
        await task
        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, logs.Handler)]:
            root.removeHandler(handler)
    err = capsys.readouterr().err
    assert TOKEN not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "uvicorn.access"]
    messages = [str(line["message"]) for line in requests]
    assert any('"GET /?token=*** HTTP/1.1" 303' in m for m in messages), messages
    assert any('"GET /healthz HTTP/1.1" 200' in m for m in messages), messages
    assert all(line["level"] == "info" and line["time"] for line in requests)
