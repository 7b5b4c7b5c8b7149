"""Reads of the projection as the API shows them: recent deployments, each with its Temporal
UI link and, while it runs, its ETA."""

from datetime import UTC, datetime, timedelta

from slipway import analytics
from slipway.models import DeploymentView
from slipway.phases import WAITING
from starter.devstack import ui_url
from starter.http.schemas import Deployment
from starter.http.services import Services

DURATION = r"^[0-9]{1,5}[smhd]$"
"""A duration as the CLI writes it: a number and s, m, h or d, e.g. 5m or 7d."""


def duration(text: str) -> timedelta:
    """A duration that matched `DURATION` (the endpoint checks it) as a timedelta."""
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})


def present(services: Services, view: DeploymentView, stack: bool = False) -> Deployment:
    """A deployment row with its Temporal UI link and, while it runs, its ETA (this reads
    the database, so call it off the event loop). A failure's stack names the server's
    paths: it is shown only when asked for (`stack`)."""
    eta = None
    if view.status in WAITING:
        eta = analytics.eta(view, services.medians(), datetime.now(UTC))
    if not stack and "stack" in view.metadata:
        kept = {key: value for key, value in view.metadata.items() if key != "stack"}
        view = view.model_copy(update={"metadata": kept})
    return Deployment.of(view, ui_url(services.settings, view.workflow_id), eta)
