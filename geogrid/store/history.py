"""Incident history read out for analysts' files: the rows the metrics aggregate, by month.

No personal field leaves here (no description, reporter or actor): an export is for
analysis on machines that are not the service's (:mod:`geogrid.services.archive`).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, text

__all__ = ["HISTORY_COLUMNS", "history_rows", "history_range"]

#: the columns of :func:`history_rows` (times as UTC timestamps, lon/lat EPSG:4326)
HISTORY_COLUMNS = (
    "id",
    "category",
    "status",
    "reported_at",
    "resolved_at",
    "due_at",
    "done_at",
    "lon",
    "lat",
)

_TIMES = ("reported_at", "resolved_at", "due_at", "done_at")


def history_rows(conn: Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """Incidents reported in ``[start, end)``: :data:`HISTORY_COLUMNS`, ordered by id.

    ``done_at`` is when the incident stopped being open, as the metrics define it
    (``COALESCE(resolved_at, closed_at, updated_at)``). Times travel as epoch seconds
    (float8, microsecond precision) and become UTC timestamps here."""
    rows = conn.execute(
        text(
            "SELECT i.id, i.category, i.status, "
            "EXTRACT(EPOCH FROM i.reported_at)::float8, EXTRACT(EPOCH FROM i.resolved_at)::float8, "
            "EXTRACT(EPOCH FROM i.due_at)::float8, "
            "EXTRACT(EPOCH FROM COALESCE(i.resolved_at, i.closed_at, i.updated_at))::float8, "
            "ST_X(i.geom), ST_Y(i.geom) "
            "FROM incident i WHERE i.reported_at >= :s AND i.reported_at < :e ORDER BY i.id"
        ),
        {"s": start, "e": end},
    ).all()
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    frame["id"] = frame["id"].astype("int64")
    for c in _TIMES:
        frame[c] = pd.to_datetime(frame[c].astype(float), unit="s", utc=True)
    frame["lon"] = frame["lon"].astype(float)
    frame["lat"] = frame["lat"].astype(float)
    return frame


def history_range(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """The first and last ``reported_at`` stored (None, None when there is none)."""
    row = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM incident")).one()
    return row[0], row[1]
