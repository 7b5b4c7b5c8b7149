"""A deployment's end, POSTed as JSON to its project's webhook, else the server's: what
ended, how, and where to look; Slack-compatible (a `text`), never a secret."""

import asyncio

import httpx
import sqlalchemy as sa
from temporalio import activity

from slipway.models import EndNotice
from slipway.project_sources import source_of
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id

_WORDS = {
    "active": "is live",
    "failed": "failed",
    "cancelled": "was cancelled",
}


def payload(notice: EndNotice, settings: Settings) -> dict[str, str | None]:
    """The JSON sent: the deployment's end in fields, and in a sentence."""
    status = notice.status.value
    text = f"{notice.project}: deployment {notice.deployment_id[:8]} {_WORDS.get(status, status)}"
    if notice.status.value != "active" and notice.error:
        text += f" in {notice.phase.value}: {notice.error.splitlines()[0][:300]}"
    elif notice.url:
        text += f" at {notice.url}"
    return {
        "project": notice.project,
        "id": notice.deployment_id,
        "status": status,
        "phase": notice.phase.value,
        "error": notice.error,
        "commit": notice.commit,
        "url": notice.url,
        "temporalUrl": settings.temporal_ui(deployment_workflow_id(notice.deployment_id)),
        "text": text,
    }


class NotifyActivities:
    """Delivery runs on the shared queue: it needs the database and the network only."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name="notify_end")
    async def notify_end(self, notice: EndNotice) -> bool:
        """POST the notice; a refusal raises so Temporal retries with backoff. False when no
        webhook is set. Delivering twice is possible after a crash: the id tells."""
        source = await asyncio.to_thread(source_of, self.engine, notice.project)
        url = source.notify_url or self.settings.notify_url
        if not url:
            return False
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(url, json=payload(notice, self.settings))
            answer.raise_for_status()
        return True
