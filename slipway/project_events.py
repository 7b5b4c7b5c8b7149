"""Each project's history outside its deployments (`project_events`): a domain added or
removed, its route rendered again, a certificate issued or refused; one row per event, its
kind a short word, its message a sentence, its metadata what a program needs."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from slipway.tables import project_events, projects


class ProjectEvent(BaseModel):
    """Something that happened to a project outside its deployments."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: int
    project: str
    kind: str
    message: str
    metadata: dict[str, Any]
    created_at: datetime


def record_event(
    engine: sa.Engine, project: str, kind: str, message: str, metadata: dict[str, Any]
) -> None:
    """Add a line to the history of a recorded project."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(project_events).values(
                project_id=sa.select(projects.c.id)
                .where(projects.c.name == project)
                .scalar_subquery(),
                kind=kind,
                message=message,
                metadata=metadata,
            )
        )


def events_of(engine: sa.Engine, project: str, limit: int = 100) -> list[ProjectEvent]:
    """The project's latest events, newest first."""
    query = (
        sa.select(
            project_events.c.id,
            projects.c.name.label("project"),
            project_events.c.kind,
            project_events.c.message,
            project_events.c.metadata,
            project_events.c.created_at,
        )
        .join(projects, projects.c.id == project_events.c.project_id)
        .where(projects.c.name == project)
        .order_by(project_events.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [ProjectEvent.model_validate(row._asdict()) for row in conn.execute(query)]
