"""A component that does not answer, as one line naming it and what to do (exit status 3),
instead of the driver's traceback. The modules are looked up among those already loaded, so
the remote CLI, which never loads the database driver, stays light."""

import sys

from starter.backend import Unreachable

START_IT = "start the stack (`slipway dev`)"


def _database_address() -> str:
    """host:port of the database the settings name, or how they name it."""
    try:
        from sqlalchemy.engine import make_url

        from slipway.settings import Settings

        url = make_url(Settings().sqlalchemy_url)
        return f"{url.host}:{url.port or 5432}"
    except Exception:
        return "the address SLIPWAY_DATABASE_URL names"


def _temporal_address() -> str:
    try:
        from slipway.settings import Settings

        return Settings().temporal_address
    except Exception:
        return "the address SLIPWAY_TEMPORAL_ADDRESS names"


def unreachable(err: BaseException) -> Unreachable | None:
    """What a failure says about a component that does not answer, if it is one."""
    database = sys.modules.get("sqlalchemy.exc")
    if database is not None:
        if isinstance(err, database.OperationalError | database.InterfaceError):
            return Unreachable(
                f"cannot reach PostgreSQL at {_database_address()}: {START_IT}, "
                "or set SLIPWAY_DATABASE_URL to a running server"
            )
        if isinstance(err, database.ProgrammingError) and "does not exist" in str(err):
            return Unreachable(
                f"PostgreSQL at {_database_address()} has no Slipway schema (or an old one): "
                "run `slipway db migrate`"
            )
    temporal = sys.modules.get("temporalio.service")
    down = (
        (temporal.RPCStatusCode.UNAVAILABLE, temporal.RPCStatusCode.DEADLINE_EXCEEDED)
        if temporal is not None
        else ()
    )
    if temporal is not None and isinstance(err, temporal.RPCError) and err.status in down:
        return temporal_down(_temporal_address())
    return None


def temporal_down(address: str) -> Unreachable:
    """Temporal refused the connection at `address`."""
    return Unreachable(
        f"cannot reach Temporal at {address}: {START_IT}, "
        "or set SLIPWAY_TEMPORAL_ADDRESS to a running server"
    )
