"""The grid worker's monthly register (社区网格员为民服务事项登记表) of a month: read the
month's rows from the store and lay them out with :func:`geogrid.core.register.register_frame`
(the definitions are in :mod:`geogrid.core.register`)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.register import check_register_level, register_frame
from geogrid.core.timewindow import month_bounds
from geogrid.settings import get_settings
from geogrid.store.workflow import register_rows

__all__ = ["monthly_register"]


def monthly_register(
    engine: Engine | Connection,
    month: str,
    level: str = "worker",
    *,
    tz: str | None = None,
) -> pd.DataFrame:
    """The register of a month, per worker or rolled up to a level.

    Parameters
    ----------
    engine : Engine or Connection
    month : str
        ``YYYY-MM``: the calendar month in time zone ``tz``.
    level : {"worker", "community", "street", "district"}
    tz : str, optional
        IANA time zone of the month's bounds (default: ``settings.city.timezone``).

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
    workers, reported, handled, units = register_rows(engine, start, end)
    return register_frame(month, workers, reported, handled, units, level)
