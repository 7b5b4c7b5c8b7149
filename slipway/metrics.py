"""Slipway's own Prometheus metrics, in the process's default registry.

Counters move where the event is recorded once: a phase transition counts when its log row
is inserted (a retried activity inserts nothing, so counts nothing), a deployment starts when
its row is created. Labels are bounded: phases, statuses, kinds, deployment types, projects
and route templates, never a deployment id. The deployments in progress are counted from the
database when scraped (`slipway.in_progress_metric`). This module imports no database: the
phases use it too.
"""

from prometheus_client import Counter, Gauge, Histogram

from slipway.phases import Phase, Status

PHASE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Seconds: a static site's phases take well under a second, an app's build minutes."""

PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

deployments_started = Counter(
    "slipway_deployments_started",
    "Deployments recorded (registered as queued), by project.",
    ["project"],
)
deployments_ended = Counter(
    "slipway_deployments_ended",
    "Deployments that reached an end: active, failed, cancelled or superseded.",
    ["project", "status"],
)
deployment_failures = Counter(
    "slipway_deployment_failures",
    "Deployments failed (or cancelled), by the phase they were in and their status.",
    ["phase", "status"],
)
phase_transitions = Counter(
    "slipway_phase_transitions",
    "Phase transitions recorded, by the phase entered; skipped phases included.",
    ["phase"],
)
phase_duration = Histogram(
    "slipway_deployment_phase_duration_seconds",
    "How long a phase ran, from its transition to the deployment's next one (skipped "
    "phases left out); type is static, container, or unknown before building tells.",
    ["phase", "type"],
    buckets=PHASE_BUCKETS,
)
stuck = Gauge(
    "slipway_deployments_stuck",
    "Deployments waiting longer than the orphan grace, by what the reconciler's last pass "
    "found them doing (slow, orphaned, no-worker).",
    ["kind"],
)
monitor_restarts = Counter(
    "slipway_monitor_restarts",
    "Unhealthy app containers the monitor restarted (the alerts say which).",
)
monitor_alerts = Counter(
    "slipway_monitor_alerts",
    "Alerts raised (once per episode), by kind: down, restart-loop, certificate.",
    ["kind"],
)
probe_latency = Histogram(
    "slipway_health_check_probe_seconds",
    "One request through Traefik proving a release: as the candidate (health_check) or "
    "as the public route (active).",
    ["target"],
    buckets=PROBE_BUCKETS,
)
copied_files = Counter(
    "slipway_copy_files",
    "Files placed in releases: copied (new content) or linked (content the store had).",
    ["how"],
)
copied_bytes = Counter(
    "slipway_copy_bytes",
    "Bytes placed in releases, copied or linked.",
    ["how"],
)
api_requests = Counter(
    "slipway_api_requests",
    "HTTP API requests by method, route template and status code.",
    ["method", "route", "status"],
)
api_latency = Histogram(
    "slipway_api_request_duration_seconds",
    "HTTP API request time until the response started, by method and route template.",
    ["method", "route"],
    buckets=REQUEST_BUCKETS,
)


# Label values known in advance start at zero, so a dashboard's rate() has a series before
# the first event and every name it queries is in the first scrape.
for _kind in ("down", "restart-loop", "certificate"):
    monitor_alerts.labels(_kind)
for _kind in ("slow", "orphaned", "no-worker"):
    stuck.labels(_kind)
for _how in ("copied", "linked"):
    copied_files.labels(_how)
    copied_bytes.labels(_how)
for _target in ("candidate", "public"):
    probe_latency.labels(_target)
for _phase in Phase:
    phase_transitions.labels(_phase.value)
    if _phase is not Phase.FAILED:
        for _status in (Status.FAILED, Status.CANCELLED):
            deployment_failures.labels(_phase.value, _status.value)
