"""Whose turn a project is in. A deployment of a project with nothing running starts its own
workflow at once: a serializer for it alone would double what the Temporal server does per
deployment. While one runs, the next go to the project's serializer, which takes the turn
before it starts anything (a deployment, a route refresh, a lifecycle action, a preview's
removal). The turn is a field of the project's row: the id of the deployment started
directly, or `SERIALIZER`. Nobody hands it back: a holder whose workflow has closed holds
nothing, so no turn outlives its work, not even across a crash."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.client import (
    Client,
    WorkflowContinuedAsNewError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.service import RPCError, RPCStatusCode

from slipway.tables import projects
from slipway.temporal import workflow_status
from slipway.workflow_ids import deployment_workflow_id, project_workflow_id

SERIALIZER = "serializer"
"""The holder that is the project's serializer (`project-<name>`), whichever run of it."""

UNSTARTED_GRACE = timedelta(minutes=2)
"""How long a deployment whose workflow is not found yet still holds the turn: between
taking it and starting the workflow lies a round trip (and, for a starter that died there,
nothing, so that the turn passes on after this)."""

WAIT_STEP = 10.0
"""Seconds a wait for the holder's end lasts before it reports that it is alive."""


@dataclass(frozen=True)
class Turn:
    """Who holds a project's turn (None: nobody ever did) and for how long."""

    holder: str | None
    held_seconds: float


@dataclass(frozen=True)
class Opening:
    """The turn can be taken from `holder` (None: nobody had it), if nobody else takes it
    first (`take` compares)."""

    holder: str | None


def current(engine: sa.Engine, project: str) -> Turn | None:
    """The project's turn as recorded; None if the project has no row. It waits on the
    database: async code calls it in a thread."""
    age = sa.func.extract("epoch", sa.func.now() - projects.c.turn_since)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(projects.c.turn, age).where(projects.c.name == project)
        ).first()
    if row is None:
        return None
    return Turn(holder=row[0], held_seconds=float(row[1] or 0.0))


def take(conn: sa.Connection, project: str, opening: Opening, holder: str) -> bool:
    """Give the turn to `holder` if it is still where `opening` found it; True if it did."""
    taken = conn.execute(
        sa.update(projects)
        .where(projects.c.name == project, projects.c.turn.is_not_distinct_from(opening.holder))
        .values(turn=holder, turn_since=sa.func.now())
        .returning(projects.c.id)
    ).first()
    return taken is not None


def give_back(engine: sa.Engine, project: str, holder: str) -> None:
    """Free the turn `holder` took and could not use (its workflow did not start)."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(projects)
            .where(projects.c.name == project, projects.c.turn == holder)
            .values(turn=None, turn_since=None)
        )


def _workflow_id(project: str, holder: str) -> str:
    return project_workflow_id(project) if holder == SERIALIZER else deployment_workflow_id(holder)


async def alive(client: Client, project: str, turn: Turn) -> bool:
    """Whether the turn's holder still works: its workflow runs (or has not been started for
    less than `UNSTARTED_GRACE`)."""
    if turn.holder is None:
        return False
    status = await workflow_status(client, _workflow_id(project, turn.holder))
    if status is None:
        return turn.held_seconds < UNSTARTED_GRACE.total_seconds()
    return status is WorkflowExecutionStatus.RUNNING


async def opening(client: Client, engine: sa.Engine, project: str) -> Opening | None:
    """Where the turn can be taken from, or None while its holder works or the project's
    serializer runs (what it holds or waits for comes first, and what arrives meanwhile
    joins it there, so that the newest still supersedes the older waiting ones)."""
    serializer = await workflow_status(client, project_workflow_id(project))
    if serializer is WorkflowExecutionStatus.RUNNING:
        return None
    turn = await asyncio.to_thread(current, engine, project)
    if turn is None:
        return Opening(None)
    if turn.holder != SERIALIZER and await alive(client, project, turn):
        return None
    return Opening(turn.holder)


async def wait_for_turn(
    client: Client,
    engine: sa.Engine,
    project: str,
    *,
    within: float | None,
    cancel: bool,
    beat: Callable[[], None],
) -> str | None:
    """Take the turn for the project's serializer once no deployment started directly holds
    it (with `cancel`, that deployment is cancelled first); None once taken, else the
    holder that still runs after `within` seconds (None: as long as it runs). `beat` is
    called while it waits. A project without a row has nothing that could hold its turn."""
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    cancelled: set[str] = set()
    while True:
        beat()
        turn = await asyncio.to_thread(current, engine, project)
        if turn is None or turn.holder == SERIALIZER:
            return None
        if not await alive(client, project, turn):
            if await asyncio.to_thread(_take_from, engine, project, Opening(turn.holder)):
                return None
            continue
        assert turn.holder is not None
        left = None if deadline is None else deadline - loop.time()
        if left is not None and left <= 0:
            return turn.holder
        handle = client.get_workflow_handle(_workflow_id(project, turn.holder))
        if cancel and turn.holder not in cancelled:
            cancelled.add(turn.holder)
            await _cancel(handle)
        step = WAIT_STEP if left is None else min(WAIT_STEP, left)
        await _ended(handle, step)


def _take_from(engine: sa.Engine, project: str, found: Opening) -> bool:
    with engine.begin() as conn:
        return take(conn, project, found, SERIALIZER)


async def _cancel(handle: WorkflowHandle[Any, Any]) -> None:
    """Ask the holder's workflow to cancel; one not started yet or ended meanwhile is not
    an error."""
    try:
        await handle.cancel()
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise


async def _ended(handle: WorkflowHandle[Any, Any], seconds: float) -> None:
    """Wait up to `seconds` for the workflow to close, however it closes."""
    try:
        await asyncio.wait_for(handle.result(follow_runs=False), seconds)
    except (TimeoutError, WorkflowFailureError, WorkflowContinuedAsNewError):
        return
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        await asyncio.sleep(min(seconds, 1.0))
