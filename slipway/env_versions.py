"""A project's environment as immutable, numbered versions (`env_versions`): every change
writes a new row holding the whole environment, names in clear and values sealed, so a
deployment names the version it ran with (a number in its metadata and in Temporal's
history, never a value) and a rollback can run with a release's own version again.
Version 0 is the empty environment of a project that never set one; it has no row."""

from collections.abc import Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy.dialects.postgresql import insert

from slipway.environment import EnvError, check
from slipway.limits import EnvLimits
from slipway.metadata import PhaseMetadata
from slipway.secrets import seal, unseal
from slipway.tables import deployments, env_versions, project_events, projects


class EnvVersion(BaseModel):
    """One version of a project's environment as people see it: names, never values."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    project: str
    version: int
    names: list[str]
    set: list[str] = []
    unset: list[str] = []
    created_at: datetime | None = None


def current(engine: sa.Engine, project: str) -> tuple[int, dict[str, str]]:
    """The project's current version and its sealed values ((0, {}) if it never set any)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(env_versions.c.version, env_versions.c.sealed_values)
            .join(projects, projects.c.id == env_versions.c.project_id)
            .where(projects.c.name == project)
            .order_by(env_versions.c.version.desc())
            .limit(1)
        ).first()
    return (row.version, dict(row.sealed_values)) if row else (0, {})


def sealed_values(engine: sa.Engine, project: str, version: int) -> dict[str, str]:
    """The sealed values of one version of the project's environment."""
    if version == 0:
        return {}
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(env_versions.c.sealed_values)
            .join(projects, projects.c.id == env_versions.c.project_id)
            .where(projects.c.name == project, env_versions.c.version == version)
        ).scalar()
    if found is None:
        raise EnvError(f"{project} has no environment version {version}")
    return dict(found)


def change(
    engine: sa.Engine,
    project: str,
    domain: str,
    key: bytes,
    limits: EnvLimits,
    *,
    values: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
) -> EnvVersion:
    """Write the next version: the current one with `values` set and `unset` removed, all
    names checked and within `limits`, in one transaction that also records the change in
    the project's history (a project not recorded yet is created, as setting its source
    creates it). Two changes at once are serialized on the project's row, so neither is
    lost. Only the values given are sealed anew; the others keep their sealed form."""
    values = dict(values or {})
    removed = sorted(set(unset))
    with engine.begin() as conn:
        conn.execute(
            insert(projects)
            .values(name=project, domain=domain)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        project_id = conn.execute(
            sa.select(projects.c.id).where(projects.c.name == project).with_for_update()
        ).scalar_one()
        latest = conn.execute(
            sa.select(env_versions.c.version, env_versions.c.sealed_values)
            .where(env_versions.c.project_id == project_id)
            .order_by(env_versions.c.version.desc())
            .limit(1)
        ).first()
        number, sealed = (latest.version, dict(latest.sealed_values)) if latest else (0, {})
        missing = [name for name in removed if name not in sealed]
        if missing:
            raise EnvError(f"{project} has no variable {', '.join(missing)} to unset")
        for name in removed:
            del sealed[name]
        check({**unseal(sealed, key), **values}, limits)
        sealed.update(seal(values, key))
        made = conn.execute(
            sa.insert(env_versions)
            .values(
                project_id=project_id,
                version=number + 1,
                sealed_values=sealed,
                change={"set": sorted(values), "unset": removed},
            )
            .returning(env_versions.c.created_at)
        ).scalar_one()
        version = EnvVersion(
            project=project,
            version=number + 1,
            names=sorted(sealed),
            set=sorted(values),
            unset=removed,
            created_at=made,
        )
        conn.execute(
            sa.insert(project_events).values(
                project_id=project_id,
                kind="env",
                message=_described(version),
                metadata=version.model_dump(mode="json", by_alias=True, exclude={"names"}),
            )
        )
    return version


def _described(version: EnvVersion) -> str:
    """The change as a line of the project's history: names only."""
    parts = [f"set {', '.join(version.set)}"] if version.set else []
    parts += [f"unset {', '.join(version.unset)}"] if version.unset else []
    return f"environment version {version.version}: {'; '.join(parts) or 'unchanged'}"


def deployment_env(
    engine: sa.Engine,
    key: bytes,
    project: str,
    version: int | None,
    deployment_id: str,
    carried: Mapping[str, str],
) -> dict[str, str]:
    """What a deployment's container runs with, in clear: the project's environment at
    `version`, then the deployment's own `--env` overrides (sealed in its row), then any a
    deployment recorded before versions carried in its input, each over the one before."""
    with engine.connect() as conn:
        own = conn.execute(
            sa.select(deployments.c.sealed_env).where(deployments.c.id == deployment_id)
        ).scalar()
    base = sealed_values(engine, project, version or 0)
    return unseal({**base, **(own or {}), **carried}, key)


def recorded_env(engine: sa.Engine, key: bytes, deployment_id: str) -> dict[str, str]:
    """The environment a recorded deployment ran with, in clear (empty if it is not
    recorded): what its output is masked with."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(projects.c.name, deployments.c.phase_metadata)
            .join(projects, projects.c.id == deployments.c.project_id)
            .where(deployments.c.id == deployment_id)
        ).first()
    if row is None:
        return {}
    version = PhaseMetadata.read(row.phase_metadata).env_version
    return deployment_env(engine, key, row.name, version, deployment_id, {})
