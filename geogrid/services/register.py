"""The grid worker's monthly register (社区网格员为民服务事项登记表) of a month: read the
month's rows from the store and lay them out with :func:`geogrid.core.register.register_frame`
(the definitions are in :mod:`geogrid.core.register`)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.masking import REGISTER_PERSONAL, mask_name, mask_ref
from geogrid.core.register import check_register_level, register_frame
from geogrid.core.scope import Scope
from geogrid.core.timewindow import month_bounds
from geogrid.services import audit
from geogrid.settings import get_settings
from geogrid.store.workflow import register_rows

__all__ = ["monthly_register"]


def monthly_register(
    engine: Engine | Connection,
    month: str,
    level: str = "worker",
    *,
    scope: Scope,
    tz: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """The register of a month, per worker or rolled up to a level, inside the caller's
    scope: the workers with a grid in the caller's units (every worker for city-wide
    roles; none for anonymous callers). Workers' names and staff numbers are clear for
    the caller's own units and for admins, masked for planners, leaders and analysts; a
    clear read is written to the audit trail.

    Parameters
    ----------
    engine : Engine or Connection
    month : str
        ``YYYY-MM``: the calendar month in time zone ``tz``.
    level : {"worker", "community", "street", "district"}
    scope : Scope
        The caller's scope (:class:`geogrid.core.scope.Scope`).
    tz : str, optional
        IANA time zone of the month's bounds (default: ``settings.city.timezone``).
    limit, offset : int, optional
        A page: ``limit`` rows (None: all) from row ``offset`` of the register's order.

    Returns
    -------
    DataFrame as :func:`geogrid.core.register.register_frame`.

    Raises
    ------
    InvalidInput
        A malformed month or an unknown level.
    """
    check_register_level(level)
    start, end = month_bounds(month, tz or get_settings().city.timezone)
    workers, reported, handled, units = register_rows(engine, start, end, scope=scope)
    frame = register_frame(month, workers, reported, handled, units, level)
    stop = None if limit is None else offset + limit
    frame = frame.iloc[offset:stop].reset_index(drop=True)
    if "worker_name" not in frame.columns or frame.empty:
        return frame
    # the store returned only the workers inside a units scope: all of them are clear
    if scope.kind == "units" or scope.personal_clear({}):
        audit.record_read(
            engine,
            scope,
            "register",
            frame["worker_id"].tolist(),
            list(REGISTER_PERSONAL),
            {"month": month},
        )
        return frame
    frame["worker_name"] = frame["worker_name"].map(
        lambda v: mask_name(str(v)) if pd.notna(v) else None
    )
    frame["ref"] = frame["ref"].map(lambda v: mask_ref(str(v)) if pd.notna(v) else None)
    return frame
