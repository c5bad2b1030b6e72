"""Mapbox Vector Tiles straight from PostGIS (``ST_AsMVTGeom`` / ``ST_AsMVT``).

Every query has bound parameters only. Geometry is selected with the index (``geom &&``
the tile's WGS84 envelope padded by the tile buffer), transformed to EPSG:3857, simplified
for the zoom (boundaries) and clipped to the tile (:data:`geogrid.core.tiles.EXTENT` units,
:data:`geogrid.core.tiles.BUFFER` buffer). Budgets are enforced here (see :mod:`geogrid.core.tiles`).

Metrics are passed as parallel arrays (``unnest``) for the units whose bbox meets the
tile only, which is cheaper than joining a metrics query per tile (bench/tiles.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geogrid.core.lifecycle import OPEN_STATUSES
from geogrid.core.tiles import (
    BUFFER,
    EXTENT,
    MAX_BYTES,
    MAX_FEATURES,
    cluster_cell_px,
    padded_tile_bounds_lonlat,
    simplify_tolerance,
    tile_bounds_3857,
    tile_bounds_lonlat,
)
from geogrid.store.columns import driver_sql

__all__ = ["MetricLiterals", "unit_tile", "incident_tile", "incident_points", "plain_unit_tile"]

# 1 when an incident is open (bound parameter :open_statuses, see _incident_filter)
_OPEN = "(i.status = ANY(:open_statuses))::int"


def _incident_filter(
    params: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    categories: Sequence[str] | None,
) -> str:
    """The ``AND …`` conditions of an incident window (bound into ``params``)."""
    params["open_statuses"] = list(OPEN_STATUSES)
    cond = []
    if start is not None:
        cond.append("i.reported_at >= :t0")
        params["t0"] = start
    if end is not None:
        cond.append("i.reported_at < :t1")
        params["t1"] = end
    if categories:
        cond.append("i.category = ANY(:cats)")
        params["cats"] = list(categories)
    return (" AND " + " AND ".join(cond)) if cond else ""


def _unit_tile_params(level: str, layer: str, z: int, x: int, y: int) -> dict[str, Any]:
    """Bind parameters shared by the unit tile queries: tile, level, layer, MVT extent and
    the padded lon/lat bounds (``w s e n``) for the index filter."""
    w, s, e, n = padded_tile_bounds_lonlat(z, x, y)
    return {
        "z": z,
        "x": x,
        "y": y,
        "lv": level,
        "layer": layer,
        "ext": EXTENT,
        "buf": BUFFER,
        "w": w,
        "s": s,
        "e": e,
        "n": n,
    }


def unit_tile(
    conn: Connection,
    level: str,
    layer: str,
    z: int,
    x: int,
    y: int,
    *,
    metrics: Mapping[str, Sequence[Any] | None] | None = None,
    literals: Mapping[str, str] | None = None,
    max_features: int = MAX_FEATURES,
    max_bytes: int = MAX_BYTES,
) -> tuple[bytes, int]:
    """MVT of the published units of ``level`` in tile ``z/x/y`` as layer ``layer``.

    ``metrics``: ``code`` plus :data:`geogrid.core.tiles.UNIT_METRIC_FIELDS` arrays (aligned);
    joined on code. Or ``literals``: the same as :meth:`MetricLiterals.params` gives them
    (formatted once per metrics frame). Returns ``(bytes, features)``. Over budget
    (features or bytes) the largest units are kept and the tolerance doubled until it fits.
    """
    params = _unit_tile_params(level, layer, z, x, y)
    params |= literals if literals is not None else MetricLiterals(metrics or {}).params()
    tol, lim = simplify_tolerance(z), max_features
    while True:
        params.update(tol=tol, lim=lim)
        data, count = conn.execute(_UNIT_TILE_SQL, params).one()
        data = bytes(data or b"")
        if len(data) <= max_bytes or lim <= 1:
            return data, int(count)
        tol, lim = tol * 2.0, max(lim // 2, 1)


class MetricLiterals:
    """The unit tile's metric arrays — ``code`` and the
    :data:`~geogrid.core.tiles.UNIT_METRIC_FIELDS` of some units, aligned — as the items of
    PostgreSQL array literals (one text parameter each: the driver's generic list dumping
    cost ~0.45 ms a z12 tile), formatted once: a map service keeps them with its metrics
    frame and a tile joins the items of its units (issue 12: formatting five values per
    unit per tile was a tenth of a cold z12 tile's own time). NULL for a missing or
    non-finite value; ``repr`` keeps floats exact.

    >>> lit = MetricLiterals({"code": ["4509", 'a"b'], "incidents": [3, None],
    ...                       "load_index": [0.25, float("nan")]})
    >>> lit.params()["codes"], lit.params()["inc"], lit.params()["li"], lit.params()["ovd"]
    ('{"4509","a\\\\"b"}', '{3,NULL}', '{0.25,NULL}', '{NULL,NULL}')
    >>> lit.params(np.array([1]))["codes"]
    '{"a\\\\"b"}'
    """

    def __init__(self, metrics: Mapping[str, Sequence[Any] | np.ndarray | None]) -> None:
        codes = metrics.get("code")
        n = 0 if codes is None else len(codes)
        items: dict[str, list[str]] = {
            "codes": [] if codes is None else [_quoted(c) for c in codes]
        }
        for param, (field, kind) in _METRIC_ARRAYS.items():
            items[param] = ["NULL" if v is None else repr(v) for v in kind(metrics.get(field), n)]
        self._items = {k: np.array(v, dtype=object) for k, v in items.items()}

    def params(self, rows: np.ndarray | None = None) -> dict[str, str]:
        """The statement's array literals of the units at positions ``rows`` (all: None)."""
        return {
            k: "{" + ",".join(a.tolist() if rows is None else a[rows].tolist()) + "}"
            for k, a in self._items.items()
        }


def _quoted(value: Any) -> str:
    """An item of a text array literal: NULL, or quoted with ``\\`` and ``"`` escaped."""
    if value is None:
        return "NULL"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


#: the unit tile's statement (built once: a text() per call parsed its 20 parameters anew).
#: The metrics are joined last, to the clipped tile geometries of a MATERIALIZED ``g``:
#: joined to the units' full geometries (inlined), the join cost more than the rest of the
#: metrics' work — a z10/z12 tile's SQL was 1.4x a bare ST_AsMVT's, now 1.03-1.13x
#: (issue 12, bench.tiles); the features, their properties and geometries are the same
_UNIT_TILE_SQL = text(
    "WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
    "m AS (SELECT * FROM unnest(CAST(:codes AS text[]), CAST(:inc AS bigint[]), "
    "  CAST(:bkl AS bigint[]), CAST(:ovd AS bigint[]), CAST(:p1k AS float8[]), "
    "  CAST(:li AS float8[])) AS m(code, incidents, open_backlog, overdue, "
    "  per_1000_residents, load_index)), "
    "u AS (SELECT u.code, u.name, u.parent_code, ST_Transform(u.geom, 3857) AS g "
    "  FROM unit u JOIN boundary_version v ON v.id = u.version_id "
    "  WHERE v.status = 'published' AND u.level = :lv "
    "  AND u.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)), "
    "g AS MATERIALIZED (SELECT u.code, u.name, u.parent_code, "
    "  ST_AsMVTGeom(ST_Simplify(u.g, :tol, false), env.e, :ext, :buf, true) AS geom "
    "  FROM u CROSS JOIN env ORDER BY ST_Area(ST_Envelope(u.g)) DESC LIMIT :lim), "
    "t AS (SELECT g.code, g.name, g.parent_code, m.incidents, m.open_backlog, m.overdue, "
    "  m.per_1000_residents, m.load_index, g.geom "
    "  FROM g LEFT JOIN m ON m.code = g.code WHERE g.geom IS NOT NULL) "
    "SELECT ST_AsMVT(t, :layer, :ext, 'geom'), count(*) FROM t"
)


def plain_unit_tile(conn: Connection, level: str, layer: str, z: int, x: int, y: int) -> bytes:
    """The unit tile as pg_tileserv would serve it (one SQL per tile, no metrics, no
    budgets): the baseline of ``bench/tiles.py``."""
    row = conn.execute(
        text(
            "WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
            "t AS (SELECT u.code, u.name, u.parent_code, ST_AsMVTGeom(ST_Transform(u.geom, 3857), "
            "  env.e, :ext, :buf, true) AS geom FROM unit u JOIN boundary_version v "
            "  ON v.id = u.version_id CROSS JOIN env WHERE v.status = 'published' AND u.level = :lv "
            "  AND u.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)) "
            "SELECT ST_AsMVT(t, :layer, :ext, 'geom') FROM t WHERE geom IS NOT NULL"
        ),
        _unit_tile_params(level, layer, z, x, y),
    ).one()
    return bytes(row[0] or b"")


def incident_tile(
    conn: Connection,
    z: int,
    x: int,
    y: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    categories: Sequence[str] | None = None,
    layer: str = "incidents",
    max_features: int = MAX_FEATURES,
    max_bytes: int = MAX_BYTES,
) -> tuple[bytes, int, int | None]:
    """MVT of incidents in tile ``z/x/y``: points when allowed and within budget, else
    clusters. Returns ``(bytes, features, cell_px)`` (``cell_px`` None for points)."""
    attempt = 0
    while True:
        cell = cluster_cell_px(z, attempt)
        if cell is None:
            data, count = _points(conn, z, x, y, start, end, categories, layer, max_features)
            if data is not None and len(data) <= max_bytes:
                return data, count, None
        else:
            data, count = _clusters(conn, z, x, y, start, end, categories, layer, cell)
            if len(data) <= max_bytes and count <= max_features or cell >= 256:
                return data, count, cell
        attempt += 1


def _points(
    conn: Connection,
    z: int,
    x: int,
    y: int,
    start: datetime | None,
    end: datetime | None,
    categories: Sequence[str] | None,
    layer: str,
    max_features: int,
) -> tuple[bytes | None, int]:
    w, s, e, n = padded_tile_bounds_lonlat(z, x, y)
    params: dict[str, Any] = {
        "z": z,
        "x": x,
        "y": y,
        "ext": EXTENT,
        "buf": BUFFER,
        "layer": layer,
        "w": w,
        "s": s,
        "e": e,
        "n": n,
        "lim": max_features + 1,
    }
    flt = _incident_filter(params, start, end, categories)
    data, count = conn.execute(
        text(
            "WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
            "t AS (SELECT i.id, i.category, i.status, "
            "  to_char(i.reported_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
            "  AS reported_at, i.grid_code, 0 AS cluster, 1 AS count, "
            f"  {_OPEN} AS open, "
            "  ST_AsMVTGeom(ST_Transform(i.geom, 3857), env.e, :ext, :buf, true) AS geom "
            "  FROM incident i CROSS JOIN env "
            f"  WHERE i.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326){flt} LIMIT :lim) "
            "SELECT ST_AsMVT(t, :layer, :ext, 'geom'), count(*) FROM t WHERE geom IS NOT NULL"
        ),
        params,
    ).one()
    if count > max_features:
        return None, int(count)
    return bytes(data or b""), int(count)


def _clusters(
    conn: Connection,
    z: int,
    x: int,
    y: int,
    start: datetime | None,
    end: datetime | None,
    categories: Sequence[str] | None,
    layer: str,
    cell_px: int,
) -> tuple[bytes, int]:
    # exact tile bounds (no buffer) so that every incident is counted in one tile only
    x0, y0, x1, y1 = tile_bounds_3857(z, x, y)
    w, s, e, n = tile_bounds_lonlat(z, x, y)
    cell = (x1 - x0) * cell_px / 256.0
    params: dict[str, Any] = {
        "z": z,
        "x": x,
        "y": y,
        "ext": EXTENT,
        "buf": BUFFER,
        "layer": layer,
        "w": w,
        "s": s,
        "e": e,
        "n": n,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "cell": cell,
    }
    flt = _incident_filter(params, start, end, categories)
    data, count = conn.execute(
        text(
            "WITH env AS (SELECT ST_TileEnvelope(:z, :x, :y) AS e), "
            "p AS (SELECT ST_X(g) AS px, ST_Y(g) AS py, o FROM (SELECT "
            f"  ST_Transform(i.geom, 3857) AS g, {_OPEN} AS o FROM incident i "
            f"  WHERE i.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326){flt}) q "
            "  WHERE ST_X(g) >= :x0 AND ST_X(g) < :x1 AND ST_Y(g) > :y0 AND ST_Y(g) <= :y1), "
            "c AS (SELECT floor((px - :x0) / :cell) AS cx, floor((py - :y0) / :cell) AS cy, "
            "  count(*) AS n, sum(o) AS o, avg(px) AS ax, avg(py) AS ay FROM p GROUP BY 1, 2), "
            "t AS (SELECT 1 AS cluster, c.n AS count, c.o AS open, "
            "  ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.ax, c.ay), 3857), env.e, :ext, :buf, true) "
            "  AS geom FROM c CROSS JOIN env) "
            "SELECT ST_AsMVT(t, :layer, :ext, 'geom'), count(*) FROM t WHERE geom IS NOT NULL"
        ),
        params,
    ).one()
    return bytes(data or b""), int(count)


#: a row of ``COPY (SELECT <float8>, <float8>) TO STDOUT (FORMAT BINARY)`` with no NULL:
#: the field count, then each field's length (8) and big-endian value
_XY_ROW = np.dtype([("n", ">i2"), ("lx", ">i4"), ("x", ">f8"), ("ly", ">i4"), ("y", ">f8")])
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _xy_from_copy(body: bytes | bytearray) -> tuple[np.ndarray, np.ndarray]:
    """The two float8 columns of a binary COPY body as arrays.

    Written here, not taken from a library: PostgreSQL's binary COPY format is documented
    and stable (COPY, "Binary Format"), and two NOT NULL float8 columns make rows of a
    fixed 26 bytes, which one NumPy structured dtype reads at memory speed. psycopg reads
    rows one by one into Python objects, and pgpq only encodes.

    >>> hdr = _COPY_SIGNATURE + bytes(8)
    >>> row = np.array([(2, 8, 110.5, 8, 22.5)], dtype=_XY_ROW).tobytes()
    >>> _xy_from_copy(hdr + row + bytes([255, 255]))
    (array([110.5]), array([22.5]))
    """
    if bytes(body[:11]) != _COPY_SIGNATURE:
        raise ValueError("not a binary COPY body")
    skip = 19 + int.from_bytes(body[15:19], "big")  # the header and its extension area
    rows = np.frombuffer(memoryview(body)[skip : len(body) - 2], dtype=_XY_ROW)
    if len(rows) and not (
        (rows["n"] == 2).all() and (rows["lx"] == 8).all() and (rows["ly"] == 8).all()
    ):
        raise ValueError("the COPY body is not rows of two float8 values")
    return rows["x"].astype(np.float64), rows["y"].astype(np.float64)


def incident_points(
    conn: Connection,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    categories: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon, lat arrays of the incidents of a filter (for the heat map).

    Read by binary ``COPY`` and decoded in one step (:func:`_xy_from_copy`): a province's
    month (8.7 M points) took 133 s as rows of Python objects, 6 s this way — nearly all
    of it the database's scan. Runs in the connection's transaction (begun here when
    there is none: the engine's begin hooks set the request's statement budget)."""
    params: dict[str, Any] = {}
    flt = _incident_filter(params, start, end, categories)
    sql = driver_sql(
        f"SELECT ST_X(i.geom), ST_Y(i.geom) FROM incident i WHERE i.geom IS NOT NULL{flt}",
        conn.dialect,
    )
    if not conn.in_transaction():
        conn.begin()
    raw = conn.connection.driver_connection
    assert raw is not None  # a checked-out connection has its driver connection
    body = bytearray()
    with raw.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as cp:
        for chunk in cp:
            body += chunk
    return _xy_from_copy(body)


def _ints(values: Iterable[Any] | None, n: int) -> list[int | None]:
    if values is None:
        return [None] * n
    return [None if v is None or v != v else int(v) for v in values]


def _floats(values: Iterable[Any] | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    out: list[float | None] = []
    for v in values:
        f = None if v is None else float(v)
        out.append(None if f is None or not np.isfinite(f) else f)
    return out


#: the statement's metric arrays: parameter → (field of UNIT_METRIC_FIELDS, elements)
_METRIC_ARRAYS: dict[str, tuple[str, Callable[[Iterable[Any] | None, int], list[Any]]]] = {
    "inc": ("incidents", _ints),
    "bkl": ("open_backlog", _ints),
    "ovd": ("overdue", _ints),
    "p1k": ("per_1000_residents", _floats),
    "li": ("load_index", _floats),
}
