"""Analysts past one machine: the locator, per-unit metrics and Gi* hot spots over
partitioned GeoParquet on a Dask cluster.

The history is one GeoParquet file per month (:func:`geogrid.services.archive.export_history`).
Each partition is attributed to the boundary version's units with the same
:class:`~geogrid.core.attribution.Attributor` as the single-machine path (sent to every
worker once) and reduced to per-unit partial sums with the same function
(:func:`geogrid.core.unitmetrics.aggregate_incident_rows`); the client adds the partial
sums — every count is a sum, so the combination is exact — and gathers the resolution
times of the window's resolved incidents to take their quantiles exactly (a median is not
a sum; the window's resolved incidents are few next to the history). The metrics are then
laid out by :func:`geogrid.services.metrics.metrics_from_aggregates` and the hot spots by
:func:`geogrid.services.metrics.hotspots_of`, the code the service runs: the results equal
the single-machine ones (counts exactly; rates and Gi* to floating-point rounding).

Without a ``client`` Dask's local scheduler runs the partitions in threads; with a
``distributed.Client`` (a ``LocalCluster`` or a scheduler address, see ``docs/scale.md``)
they run on its workers. The database is read only for the boundary version, the
categories and the workers — never for the incidents.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import dask
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from distributed import default_client
from sqlalchemy import Engine

from geogrid.core.attribution import Attributor
from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS, LEVEL_COLUMN, check_level
from geogrid.core.lifecycle import HANDLED_STATUSES
from geogrid.core.loadindex import as_weights
from geogrid.core.timewindow import resolve_window
from geogrid.core.unitmetrics import AGGREGATE_COUNTS, aggregate_incident_rows
from geogrid.errors import InvalidInput, NotFound
from geogrid.services import metrics
from geogrid.services.attribution import attributor_for_version
from geogrid.services.incidents import check_categories, list_categories
from geogrid.services.unitcache import UnitCache
from geogrid.settings import get_settings
from geogrid.store.units import resolve_version

__all__ = [
    "read_history",
    "locate_partitions",
    "aggregate_partitions",
    "dask_metrics",
    "dask_hotspots",
]

_SUMS = [*AGGREGATE_COUNTS, "effort_incidents"]


def read_history(folder: str | Path) -> dask_geopandas.GeoDataFrame:
    """The monthly GeoParquet files of ``folder`` as a Dask GeoDataFrame (one partition
    per file at least)."""
    files = sorted(Path(folder).glob("incidents-*.parquet"))
    if not files:
        raise NotFound(f"{folder}: no incidents-YYYY-MM.parquet file (geogrid scale export)")
    return dask_geopandas.read_parquet([str(f) for f in files])


def _attributed(part: gpd.GeoDataFrame, att: Attributor) -> pd.DataFrame:
    """A partition with lon/lat and the unit codes of every level (None outside)."""
    lon = shapely.get_x(part.geometry.values).astype(float)
    lat = shapely.get_y(part.geometry.values).astype(float)
    codes = att.attribute(lon, lat)
    out = pd.DataFrame(part.drop(columns=part.geometry.name)).reset_index(drop=True)
    out["lon"], out["lat"] = lon, lat
    for c in ATTRIBUTION_COLUMNS:
        out[c] = codes[c].to_numpy(dtype=object)
    return out


def _active_client(client: Any) -> Any:
    """``client``, else the process's default distributed client, else None (Dask's local
    scheduler)."""
    if client is not None:
        return client
    try:
        return default_client()
    except ValueError:
        return None


def _shared(att: Attributor, client: Any) -> Any:
    """The attributor as one node of a graph: scattered to every worker once on a
    cluster, one named (never hashed, never traversed) node locally."""
    if client is not None:
        return client.scatter(att, broadcast=True)
    return dask.delayed(att, name=f"attributor-{uuid.uuid4().hex}", traverse=False)


def locate_partitions(
    history: dask_geopandas.GeoDataFrame, att: Attributor, *, client: Any = None
) -> Any:
    """The locator over every partition: a lazy Dask DataFrame of the history's rows with
    ``lon``, ``lat`` and :data:`~geogrid.core.hierarchy.ATTRIBUTION_COLUMNS`."""
    meta = _attributed(history._meta, att)
    shared = _shared(att, _active_client(client))
    return history.map_partitions(_attributed, shared, meta=meta)


def _partial(
    part: gpd.GeoDataFrame,
    att: Attributor,
    level: str,
    efforts: dict[str, float],
    categories: list[str] | None,
    window: dict[str, datetime],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One partition's per-unit sums and its window's resolution times (hours, by code)."""
    if categories is not None:
        part = part[part["category"].isin(categories)]
    rows = _attributed(part, att)
    rows["effort"] = rows["category"].map(efforts).astype(float)
    sums = aggregate_incident_rows(rows, level, **window)[["code", *_SUMS]]
    rep, res = rows["reported_at"], rows["resolved_at"]
    keep = (
        (rep >= window["start"])
        & (rep < window["end"])
        & rows["status"].isin(HANDLED_STATUSES)
        & res.notna()
        & (res <= window["t"])
    ).to_numpy()
    hours = pd.DataFrame(
        {
            "code": rows.loc[keep, LEVEL_COLUMN[level]].to_numpy(dtype=object),
            "hours": ((res - rep)[keep].dt.total_seconds() / 3600.0).to_numpy(float),
        }
    )
    return sums, hours


def aggregate_partitions(
    history: dask_geopandas.GeoDataFrame,
    att: Attributor,
    level: str,
    *,
    efforts: dict[str, float],
    categories: list[str] | None,
    prev_start: datetime,
    start: datetime,
    end: datetime,
    t: datetime,
    client: Any = None,
) -> pd.DataFrame:
    """Per-unit sums of the history over a window, computed per partition and combined
    exactly: the same columns as :func:`geogrid.core.unitmetrics.aggregate_incident_rows`
    (``code``, the counts, ``effort_incidents``, ``median_hours``, ``p90_hours``)."""
    window = {"prev_start": prev_start, "start": start, "end": end, "t": t}
    client = _active_client(client)
    shared = _shared(att, client)
    tasks = [
        dask.delayed(_partial, pure=False)(p, shared, level, efforts, categories, window)
        for p in history.to_delayed()
    ]
    if client is not None:
        parts = client.gather(client.compute(tasks))
    else:
        parts = dask.compute(*tasks)
    sums = pd.concat([s for s, _ in parts], ignore_index=True)
    sums = sums.groupby("code", dropna=False, sort=False)[_SUMS].sum()
    for c in AGGREGATE_COUNTS:
        sums[c] = sums[c].astype(np.int64)
    hours = pd.concat([h for _, h in parts], ignore_index=True)
    q = hours.groupby("code")["hours"].quantile(np.array([0.5, 0.9])).unstack()
    if q.empty:
        q = pd.DataFrame(columns=[0.5, 0.9], dtype=float)
    sums["median_hours"] = q[0.5].reindex(sums.index)
    sums["p90_hours"] = q[0.9].reindex(sums.index)
    return sums.reset_index().rename(columns={"index": "code"})


def dask_metrics(
    engine: Engine,
    folder: str | Path,
    level: str = "grid",
    *,
    start: Any = None,
    end: Any = None,
    now: Any = None,
    categories: Iterable[str] | str | None = None,
    weights: Any = None,
    tz: str | None = None,
    client: Any = None,
    cache: UnitCache | None = None,
) -> gpd.GeoDataFrame:
    """:func:`geogrid.services.metrics.load_metrics` of the published boundary version,
    with the incidents read from the monthly GeoParquet files of ``folder`` on a Dask
    cluster (``client``) instead of from the database. Same parameters, same result."""
    level = check_level(level)
    zone = tz or get_settings().city.timezone
    start_d, end_d, now_d = resolve_window(start, end, now, tz=zone)
    t = min(end_d, now_d)
    prev_start = start_d - (end_d - start_d)
    cache = cache if cache is not None else UnitCache()
    with engine.connect() as conn:
        vid = resolve_version(conn, None, None)
        if vid is None:
            raise NotFound("no boundary version is published")
        att = attributor_for_version(conn, vid, cache=cache)
        cats = None
        if categories is not None:
            given = categories.split(",") if isinstance(categories, str) else list(categories)
            cats = check_categories(conn, [c.strip() for c in given if c.strip()], "categories")
        efforts = {c["code"]: float(c["effort"]) for c in list_categories(conn, active_only=False)}
    if not efforts:
        raise InvalidInput("categories", [], "a category catalogue (none is stored)")
    agg = aggregate_partitions(
        read_history(folder),
        att,
        level,
        efforts=efforts,
        categories=cats,
        prev_start=prev_start,
        start=start_d,
        end=end_d,
        t=t,
        client=client,
    )
    return metrics.metrics_from_aggregates(
        engine,
        level,
        agg,
        version_id=vid,
        prev_start=prev_start,
        start=start_d,
        end=end_d,
        t=t,
        categories=cats,
        weights=as_weights(weights),
        cache=cache,
        path="dask",
    )


def dask_hotspots(
    engine: Engine,
    folder: str | Path,
    level: str = "grid",
    *,
    metric: str = "incidents",
    weights: str = "queen",
    permutations: int = 0,
    fdr: bool = True,
    seed: int | None = 0,
    client: Any = None,
    cache: UnitCache | None = None,
    **window: Any,
) -> pd.DataFrame:
    """:func:`geogrid.services.metrics.unit_hotspots` over the GeoParquet history on a
    Dask cluster (the metrics by :func:`dask_metrics`, Gi* by the service's code)."""
    cache = cache if cache is not None else UnitCache()
    m = dask_metrics(engine, folder, level, client=client, cache=cache, **window)
    return metrics.hotspots_of(
        engine,
        m,
        metric,
        weights=weights,
        permutations=permutations,
        fdr=fdr,
        seed=seed,
        cache=cache,
    )
