"""Previews in the database. A preview of project P named N is tracked as a project of its
own, `N--P` (`projects.preview_of` names P): its deployments have phases, logs and a status
like any other, and it is routed and kept on disk under that name, so that nothing it does
can touch P's `current`, route or container. Removing it (its branch deleted, or expired)
sets `removed_at` and adds a line to P's history; its deployments stay on record."""

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from slipway.models import DeploymentView, PreviewView
from slipway.names import SITE_SEPARATOR
from slipway.phases import WAITING, Status
from slipway.project_events import record_event
from slipway.queries import get_deployment, recent
from slipway.tables import deployments, projects

_parent = projects.alias("parent")


def register_preview(conn: sa.Connection, site: str, project: str, domain: str) -> None:
    """Record `site` (answering at `domain`) as a preview of `project` (made if new, at the
    same base domain), and as not removed: a preview deployed again after its removal is
    back. Runs in the caller's transaction."""
    conn.execute(
        insert(projects)
        .values(name=project, domain=project + domain.removeprefix(site))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    parent = sa.select(projects.c.id).where(projects.c.name == project).scalar_subquery()
    conn.execute(
        sa.update(projects)
        .where(projects.c.name == site)
        .values(preview_of=parent, removed_at=None)
    )


class SiteClashError(ValueError):
    """A deployment whose name would make a project another's; the message says what to do."""


def check_site(engine: sa.Engine, site: str, parent: str) -> None:
    """Refuse a deployment that would turn one project into another by its name alone. A
    project deployed as itself (`parent` empty) must not be a preview (its project deploys
    it) and, unless it has served already, must not have `--` in its name: `x--p` is how
    p's preview `x` is named, and p's next preview deploy would take it over. A preview
    (`site` of `parent`) must not take over a project of that name which has served as
    one of its own, and must not preview a preview."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(projects.c.id, projects.c.preview_of, _parent.c.name)
            .select_from(projects.outerjoin(_parent, _parent.c.id == projects.c.preview_of))
            .where(projects.c.name == site)
        ).first()
        served = row is not None and SITE_SEPARATOR in site and _served(conn, row.id)
        owner = (
            parent
            and conn.execute(
                sa.select(_parent.c.name)
                .select_from(projects.join(_parent, _parent.c.id == projects.c.preview_of))
                .where(projects.c.name == parent)
            ).scalar()
        )
    if not parent:
        if row is not None and row.preview_of is not None:
            name = site.removesuffix(f"{SITE_SEPARATOR}{row.name}")
            raise SiteClashError(
                f"{site} is a preview of {row.name}: deploy it with "
                f"`slipway deploy --project {row.name} --preview {name}`"
            )
        if SITE_SEPARATOR in site and not served:
            raise SiteClashError(
                f"project name {site!r} has {SITE_SEPARATOR!r} in it, which names previews "
                f"(`<preview>{SITE_SEPARATOR}<project>`): choose a name without it, or deploy "
                f"a preview with `slipway deploy --project <project> --preview <preview>`"
            )
        return
    if owner:
        raise SiteClashError(
            f"{parent} is a preview of {owner}: a preview has no previews of its own"
        )
    if row is not None and row.preview_of is None and served:
        raise SiteClashError(
            f"{site} is a project of its own, not a preview of {parent}: give the preview "
            "another name"
        )


def _served(conn: sa.Connection, project_id: int) -> bool:
    """True if any deployment of the project went further than failing or being cancelled
    before it started: it has been a project in its own right."""
    return (
        conn.execute(
            sa.select(deployments.c.id)
            .where(
                deployments.c.project_id == project_id,
                deployments.c.status.notin_([Status.FAILED.value, Status.CANCELLED.value]),
            )
            .limit(1)
        ).first()
        is not None
    )


def lineage(engine: sa.Engine, view: DeploymentView) -> dict[str, str]:
    """What a recorded deployment's input said of previews, found again for a new run of it
    (resumed, or abandoned): the project it previews, if its own is a preview, and for a
    promotion the preview its release comes from (that release's deployment's project)."""
    origin = get_deployment(engine, view.release) if view.release != view.id else None
    return {
        "preview_of": preview_parent(engine, view.project) or "",
        "release_from": origin.project if origin and origin.project != view.project else "",
    }


def preview_parent(engine: sa.Engine, site: str, *, live: bool = False) -> str | None:
    """The project `site` is a preview of (with `live`, only while it is not removed), or
    None if it is not one."""
    query = (
        sa.select(_parent.c.name)
        .select_from(projects.join(_parent, _parent.c.id == projects.c.preview_of))
        .where(projects.c.name == site)
    )
    if live:
        query = query.where(projects.c.removed_at.is_(None))
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def _rows(engine: sa.Engine, project: str | None) -> list[tuple[str, str]]:
    query = (
        sa.select(projects.c.name, _parent.c.name)
        .select_from(projects.join(_parent, _parent.c.id == projects.c.preview_of))
        .where(projects.c.removed_at.is_(None))
        .order_by(_parent.c.name, projects.c.name)
    )
    if project is not None:
        query = query.where(_parent.c.name == project)
    with engine.connect() as conn:
        return [(row[0], row[1]) for row in conn.execute(query).all()]


def live_previews(engine: sa.Engine, project: str) -> list[str]:
    """The project's previews that are not removed, by their own names."""
    return [site for site, _ in _rows(engine, project)]


def list_previews(
    engine: sa.Engine, project: str | None, url_of: Callable[[str], str], ttl: timedelta
) -> list[PreviewView]:
    """The previews not removed (of one project, if asked), each with its newest deployment,
    where it answers, and when it expires unless deployed again."""
    found: list[PreviewView] = []
    for site, parent in _rows(engine, project):
        newest = recent(engine, site, None, 1)
        view = newest[0] if newest else None
        serving = recent(engine, site, Status.ACTIVE, 1)
        found.append(
            PreviewView(
                project=parent,
                name=site.removesuffix(f"{SITE_SEPARATOR}{parent}"),
                site=site,
                url=url_of(site),
                deployment_id=view.id if view else None,
                status=view.status if view else None,
                release=serving[0].release if serving else None,
                updated_at=view.created_at if view else None,
                expires_at=view.created_at + ttl if view else None,
            )
        )
    return found


def expired(engine: sa.Engine, ttl: timedelta, now: datetime) -> list[tuple[str, str, str | None]]:
    """The previews not removed whose newest deployment is older than `ttl` and none of
    whose deployments is under way: (site, project, server)."""
    newest = (
        sa.select(sa.func.max(deployments.c.created_at))
        .where(deployments.c.project_id == projects.c.id)
        .scalar_subquery()
    )
    waiting = (
        sa.select(deployments.c.id)
        .where(
            deployments.c.project_id == projects.c.id,
            deployments.c.status.in_(sorted(s.value for s in WAITING)),
        )
        .exists()
    )
    query = (
        sa.select(projects.c.name, _parent.c.name, projects.c.server)
        .select_from(projects.join(_parent, _parent.c.id == projects.c.preview_of))
        .where(projects.c.removed_at.is_(None), newest < now - ttl, ~waiting)
        .order_by(projects.c.name)
    )
    with engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(query).all()]


def mark_removed(engine: sa.Engine, site: str, project: str, name: str, reason: str) -> bool:
    """Record the preview removed, and say so in its project's history; False if it was
    already (a retry records nothing twice)."""
    with engine.begin() as conn:
        changed = conn.execute(
            sa.update(projects)
            .where(projects.c.name == site, projects.c.removed_at.is_(None))
            .values(removed_at=sa.func.now())
            .returning(projects.c.id)
        ).first()
    if changed is None:
        return False
    record_event(
        engine,
        project,
        "preview-removed",
        f"preview {name} removed: {reason}",
        {"preview": name, "site": site, "reason": reason},
    )
    return True
