"""Incident history as partitioned GeoParquet: one file per month, for analysts' machines
and Dask clusters (:mod:`geogrid.services.scale`).

A month is a calendar month in the city's zone; its file is
``<folder>/incidents-YYYY-MM.parquet`` (GeoParquet 1.0: WKB points in EPSG:4326, the
``geo`` metadata written by GeoPandas), with :data:`geogrid.store.history.HISTORY_COLUMNS`
— no personal field. Exporting a month again replaces its file (written to a temporary
name, then renamed, so a reader never sees half a file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd

from geogrid.core.timewindow import month_bounds
from geogrid.settings import get_settings
from geogrid.store import history as store
from geogrid.store.engine import connection

__all__ = ["ExportReport", "export_history", "month_file", "months_between"]


@dataclass
class ExportReport:
    """What :func:`export_history` wrote: ``files`` (month → path) and ``rows``."""

    folder: str
    files: dict[str, str] = field(default_factory=dict)
    rows: int = 0


def month_file(folder: str | Path, month: str) -> Path:
    """The file of a month ``YYYY-MM`` in ``folder``."""
    return Path(folder) / f"incidents-{month}.parquet"


def months_between(first: datetime, last: datetime, tz: str) -> list[str]:
    """Every month ``YYYY-MM`` (in ``tz``) from the one holding ``first`` to the one
    holding ``last``.

    >>> from datetime import UTC
    >>> months_between(datetime(2026, 1, 31, 17, tzinfo=UTC),
    ...                datetime(2026, 3, 2, tzinfo=UTC), "Asia/Shanghai")
    ['2026-02', '2026-03']
    """
    zone = ZoneInfo(tz)
    a, b = first.astimezone(zone), last.astimezone(zone)
    out, y, m = [], a.year, a.month
    while (y, m) <= (b.year, b.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = y + (m == 12), m % 12 + 1
    return out


def export_history(
    bind,
    folder: str | Path,
    *,
    months: list[str] | None = None,
    tz: str | None = None,
) -> ExportReport:
    """Write the incident history as one GeoParquet file per month.

    Parameters
    ----------
    bind : Engine or Connection
    folder : where the files go (created when missing)
    months : the months ``YYYY-MM`` to write (default: every month with an incident)
    tz : the zone months are read in (default: ``settings.city.timezone``)
    """
    zone = tz or get_settings().city.timezone
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport(folder=str(out))
    with connection(bind) as conn:
        if months is None:
            first, last = store.history_range(conn)
            months = [] if first is None or last is None else months_between(first, last, zone)
        for month in months:
            start, end = month_bounds(month, zone)
            rows = store.history_rows(conn, start, end)
            gdf = gpd.GeoDataFrame(
                rows.drop(columns=["lon", "lat"]),
                geometry=gpd.points_from_xy(rows["lon"], rows["lat"]),
                crs="EPSG:4326",
            )
            path = month_file(out, month)
            tmp = path.with_suffix(".parquet.tmp")
            gdf.to_parquet(tmp, index=False)
            os.replace(tmp, path)
            report.files[month] = str(path)
            report.rows += len(gdf)
    return report
