"""`slipway_deployments_in_progress{phase}`, counted from the database at scrape time, so
every process that exposes it (the worker, the API) tells the same truth."""

from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from slipway.phases import WAITING, Phase
from slipway.tables import deployments

_ENDS = frozenset({Phase.ACTIVE, Phase.FAILED})


class InProgress(Collector):
    """`slipway_deployments_in_progress{phase}`, counted from the database at scrape time."""

    def __init__(self) -> None:
        self.engine: sa.Engine | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "slipway_deployments_in_progress",
            "Deployments queued or in progress, by their current phase (from the database).",
            labels=["phase"],
        )
        counts = dict.fromkeys([p.value for p in Phase if p not in _ENDS], 0)
        if self.engine is not None:
            query = (
                sa.select(deployments.c.phase, sa.func.count())
                .where(deployments.c.status.in_(sorted(s.value for s in WAITING)))
                .group_by(deployments.c.phase)
            )
            try:
                with self.engine.connect() as conn:
                    counts.update({phase: n for phase, n in conn.execute(query)})
            except sa.exc.SQLAlchemyError:
                return
        for phase, n in counts.items():
            family.add_metric([phase], n)
        yield family


in_progress = InProgress()
REGISTRY.register(in_progress)


def count_in_progress_from(engine: sa.Engine) -> None:
    """Have the in-progress gauge count this database's deployments."""
    in_progress.engine = engine
