"""How the worker, the API and `slipway dev` log: readable text, or with `SLIPWAY_LOG_FORMAT=json`
one JSON object a line for a log collector.

A JSON line carries, besides time, level, logger and message, the structured fields a record
was given (`deployment_id`, `project`, `phase`, `status`, ...) and, in an activity or a
workflow, its Temporal workflow and run ids. Only the fields named in `FIELDS` are written:
an `extra` that is not named there never reaches the log, so nothing is logged by accident.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

FIELDS = (
    "deployment_id",
    "project",
    "phase",
    "status",
    "failed_phase",
    "skipped",
    "workflow_id",
    "run_id",
    "activity_type",
    "attempt",
    "task_queue",
)
"""The structured fields a JSON line may carry, in this order."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class TemporalContext(logging.Filter):
    """Adds the Temporal ids of the activity or workflow a record was logged in: from the
    activity's context (blocking work run through `asyncio.to_thread` keeps it), or from the
    `temporal_activity`/`temporal_workflow` details the SDK's own loggers attach."""

    def filter(self, record: logging.LogRecord) -> bool:
        details: dict[str, Any] = {}
        for key in ("temporal_workflow", "temporal_activity"):
            found = getattr(record, key, None)
            if isinstance(found, dict):
                details.update(found)
        if not details and activity.in_activity():
            info = activity.info()
            details = {
                "workflow_id": info.workflow_id,
                "run_id": info.workflow_run_id,
                "activity_type": info.activity_type,
                "attempt": info.attempt,
                "task_queue": info.task_queue,
            }
        for key in ("workflow_id", "run_id", "activity_type", "attempt", "task_queue"):
            value = details.get(key) or details.get(f"workflow_{key}")
            if value is not None and not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the record's
    structured fields, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Slipway's stderr handler in `log_format` (text or json), with the Temporal ids added."""

    def __init__(self, log_format: str) -> None:
        super().__init__()
        json_lines = log_format == "json"
        self.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
        self.addFilter(TemporalContext())


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Log at `level` in `log_format` from every logger, through one `Handler` on the root
    logger (replacing one configured before; other handlers stay); httpx's request lines are
    left out (they would name every probe)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, Handler)]:
        root.removeHandler(old)
    root.addHandler(Handler(log_format))
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
