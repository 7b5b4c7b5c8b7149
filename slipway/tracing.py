"""OpenTelemetry traces across the API, the Temporal client, the workflows and every phase
activity, exported over OTLP.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
nothing of OpenTelemetry's SDK is imported, no interceptor is added and no span is made. On,
the exporter reads the standard variables (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_HEADERS`,
...) and speaks OTLP over HTTP (protobuf), as a collector's port 4318 expects.

Temporal's `TracingInterceptor` carries the trace in the headers of what a client starts or
signals and of every child workflow and activity, so a deployment's trace runs from the
request that submitted it through its project's serializer, its workflow and each phase
activity; each activity's span carries the deployment id and project.
"""

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from temporalio.client import Interceptor as ClientInterceptor
    from temporalio.worker import Interceptor as WorkerInterceptor

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
DEPLOYMENT_ID = "slipway.deployment_id"
PROJECT = "slipway.project"

_provider: "TracerProvider | None" = None


def configured() -> bool:
    """True if an OTLP endpoint is set in the environment."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def start(service_name: str) -> bool:
    """When an OTLP endpoint is configured, export this process's spans there as
    `service_name` (unless `OTEL_SERVICE_NAME` says otherwise); False when tracing is off."""
    if _provider is not None:
        return True
    if not configured():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use(provider)
    return True


def use(provider: "TracerProvider | None") -> None:
    """Trace through `provider` from now on (None: stop tracing what starts next); clients
    connected and apps created before keep what they had."""
    global _provider
    _provider = provider


def provider() -> "TracerProvider | None":
    """The tracer provider in use, or None when tracing is off."""
    return _provider


def client_interceptors() -> "list[ClientInterceptor]":
    """Temporal's tracing interceptor when tracing is on (a worker built on the client uses
    it too), else nothing."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer=_provider.get_tracer("slipway"))]


def worker_interceptors() -> "Sequence[WorkerInterceptor]":
    """The interceptor that names the deployment on each activity's span, when tracing is on."""
    if _provider is None:
        return []
    from slipway.span_naming import DeploymentAttributes

    return [DeploymentAttributes()]


def name_deployment(deployment_id: str, project: str) -> None:
    """Put the deployment on the current span (the request's, the activity's), if any."""
    if _provider is None:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attribute(DEPLOYMENT_ID, deployment_id)
    span.set_attribute(PROJECT, project)


@contextlib.contextmanager
def submitting(deployment_id: str, project: str) -> Iterator[None]:
    """A span for handing a deployment to its project's serializer, named after it, under
    the current one (an API request's) or starting the trace (the CLI's); the current span
    is named after it too."""
    if _provider is None:
        yield
        return
    name_deployment(deployment_id, project)
    tracer = _provider.get_tracer("slipway")
    attributes = {DEPLOYMENT_ID: deployment_id, PROJECT: project}
    with tracer.start_as_current_span("SubmitDeployment", attributes=attributes):
        yield
