"""A synthetic province for the scale benchmark (``bench.province``): 14 cities, about
100,000 grids, and a year of incidents written straight to partitioned GeoParquet.

Deterministic for a seed; pure (files are written only where the caller says).

Cities
------
Each city is a full demo build (:func:`geogrid.demo.boundaries.build_demo`: the 7 real
Yulin county outlines, streets, communities, grids and buildings generated inside them)
with a seed of its own, so no two cities share their inner partition. The builds are then
**moved**: the city named 玉林 (4509) stays where Yulin is; the others are placed on a
4 × 4 lattice of cells of :data:`CELL` degrees west and north of it (roughly Guangxi's
extent, 105–111°E × 21.6–28°N) and mirrored east–west, north–south or both (by their
rank), so that no two outlines look alike and none overlap. Codes are recoded from
``4509…`` to the city's real prefix (``4501`` 南宁 … ``4514`` 崇左). Grids are shared among
the cities in proportion to their (2020 census, rounded) populations with
largest-remainder rounding. Areas keep the build's ``area_m2`` (the same shape, mirrored).

Incidents
---------
:func:`write_incidents` writes ``n`` incidents over ``months`` calendar months (in
Asia/Shanghai) ending before ``end``, one GeoParquet file per city and month —
``incidents-YYYY-MM-CCCC.parquet``, the layout and columns of ``geogrid scale export``
(``id, category, status, reported_at, resolved_at, due_at, done_at, geometry``), so
:func:`geogrid.services.scale.read_history` reads a province folder as it is. Rows are made
in chunks of :data:`CHUNK` with NumPy and appended as row groups: memory stays at a chunk
whatever ``n`` is (100 M rows is a parameter). Each row falls within a few metres of a
building drawn by households, inside the disc that keeps it strictly inside the
building's grid (so every incident has exactly one grid); category by the catalogue's
shares; resolution lognormal around 0.35 × the category's limit (≈ 8 % overdue); 4 %
rejected or duplicate; statuses as seen at ``end``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from geogrid.core.catalogue import load_categories
from geogrid.demo.boundaries import DEFAULT_COUNTIES_PATH, build_demo
from geogrid.demo.city import TIMEZONE
from geogrid.errors import InvalidInput

__all__ = [
    "CHUNK",
    "CITIES",
    "CELL",
    "HISTORY_SCHEMA",
    "Province",
    "build_province",
    "checksum",
    "import_frame",
    "incident_chunks",
    "wkb_points",
    "write_incidents",
]

#: (code prefix, name, population in millions — 2020 census, rounded) of Guangxi's cities
CITIES: tuple[tuple[str, str, float], ...] = (
    ("4501", "南宁", 8.7),
    ("4502", "柳州", 4.2),
    ("4503", "桂林", 4.9),
    ("4504", "梧州", 2.8),
    ("4505", "北海", 1.9),
    ("4506", "防城港", 1.0),
    ("4507", "钦州", 3.3),
    ("4508", "贵港", 4.3),
    ("4509", "玉林", 5.8),
    ("4510", "百色", 3.6),
    ("4511", "贺州", 2.0),
    ("4512", "河池", 3.4),
    ("4513", "来宾", 2.1),
    ("4514", "崇左", 2.1),
)
_HOME = "4509"  # the build's own prefix: Yulin stays in place
#: lattice cell (degrees lon, lat): Yulin's extent (1.35° × 1.50°) and a margin
CELL = (1.45, 1.60)
_COLUMNS = 4
#: rows generated (and written as one row group) at a time
CHUNK = 1_000_000
_MAX_JITTER_DEG = 0.0003  # ≈ 30 m
_US_PER_H = 3_600_000_000
_NAT = np.iinfo(np.int64).min  # NaT as int64 (and as datetime64)

#: the columns of a history file (``geogrid scale export``'s, geometry as WKB)
HISTORY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("category", pa.string()),
        ("status", pa.string()),
        ("reported_at", pa.timestamp("us", tz="UTC")),
        ("resolved_at", pa.timestamp("us", tz="UTC")),
        ("due_at", pa.timestamp("us", tz="UTC")),
        ("done_at", pa.timestamp("us", tz="UTC")),
        ("geometry", pa.binary()),
    ]
)


@dataclass
class Province:
    """The built province.

    Attributes
    ----------
    units : level → GeoDataFrame of every city (DESIGN.md unit columns, EPSG:4326)
    cities : one row per city: ``code``, ``name``, ``grids``, ``weight`` (its share of
        the incidents), ``seed``, ``mirror`` (``""``, ``"x"``, ``"y"``, ``"xy"``), ``dx``,
        ``dy`` (degrees moved)
    pool : the points incidents are drawn around: ``lon``, ``lat``, ``radius`` (degrees,
        strictly less than the distance to the grid's boundary), ``households``,
        ``grid`` (position in ``units["grid"]``), ``city`` (position in ``cities``)
    """

    units: dict[str, gpd.GeoDataFrame]
    cities: pd.DataFrame
    pool: pd.DataFrame


def _allocate(weights: np.ndarray, total: int, lo: int) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainder), each ≥ ``lo``."""
    share = weights / weights.sum() * (total - lo * len(weights))
    out = np.floor(share).astype(np.int64)
    rest = total - lo * len(weights) - int(out.sum())
    out[np.argsort(-(share - out), kind="stable")[:rest]] += 1
    return out + lo


def _layout(n_cities: int) -> list[tuple[int, int]]:
    """Lattice cells (column east→west offset, row northward) of the cities, Yulin's
    cell (0, 0) first for the home city."""
    cells = [(c, r) for r in range(_COLUMNS) for c in range(_COLUMNS)]
    return cells[:n_cities]


def _move(geoms: np.ndarray, mirror: str, centre: tuple[float, float], dx: float, dy: float):
    """Mirror about ``centre`` then shift: the same float operation on every vertex, so
    edges shared by neighbouring grids stay shared exactly."""

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        if "x" in mirror:
            x = 2 * centre[0] - x
        if "y" in mirror:
            y = 2 * centre[1] - y
        return np.column_stack([x + dx, y + dy])

    out = shapely.transform(geoms, fn)
    # a mirror reverses the rings: give them back the counter-clockwise shells the
    # locator's orientation test expects
    return shapely.orient_polygons(out) if mirror else out


def _recode(values: pd.Series, prefix: str) -> pd.Series:
    return values.map(lambda v: None if v is None or pd.isna(v) else prefix + str(v)[4:])


def build_province(
    n_cities: int = 14,
    n_grids: int = 100_000,
    *,
    seed: int = 2026,
    counties: list[str] | None = None,
) -> Province:
    """Build ``n_cities`` cities (the first ``n_cities`` of :data:`CITIES`, Yulin
    always among them) with ``n_grids`` grids in all.

    ``counties`` restricts every build to some of the 7 Yulin county codes (e.g.
    ``["450903"]`` for a quick, small province in tests); default all 7.
    """
    if not 1 <= n_cities <= len(CITIES):
        raise InvalidInput("n_cities", n_cities, f"1 to {len(CITIES)}")
    chosen = [c for c in CITIES if c[0] == _HOME] + [c for c in CITIES if c[0] != _HOME]
    chosen = chosen[:n_cities]
    src = gpd.read_file(DEFAULT_COUNTIES_PATH)
    if counties is not None:
        src = src[src["adcode"].astype(str).isin(counties)].reset_index(drop=True)
        if src.empty:
            raise InvalidInput("counties", counties, "codes of the Yulin counties (4509xx)")
    weights = np.array([c[2] for c in chosen])
    per_city = _allocate(weights, n_grids, 0)
    levels: dict[str, list[gpd.GeoDataFrame]] = {}
    pools, rows = [], []
    offset = 0
    for i, ((prefix, name, _), k, (col, row)) in enumerate(
        zip(chosen, per_city, _layout(n_cities), strict=True)
    ):
        # the demo's ratio of communities to grids, but at least two per street (the
        # builder's floor: ≈ 15 streets per county) for small test provinces
        n_comm = max(round(int(k) * 1600 / 8798), min(int(k), 32 * len(src)))
        city = build_demo(src, seed=seed + i, n_grids=int(k), n_communities=n_comm)
        x0, y0, x1, y1 = city.units["district"].total_bounds
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        mirror = ("", "x", "y", "xy")[i % 4] if prefix != _HOME else ""
        dx, dy = -col * CELL[0], row * CELL[1]
        for lv, gdf in city.units.items():
            g = gdf.copy()
            g["geometry"] = _move(np.asarray(g.geometry.values), mirror, centre, dx, dy)
            g["code"] = _recode(g["code"], prefix)
            g["parent_code"] = _recode(g["parent_code"], prefix)
            if lv == "district":
                g["name"] = name + g["name"]
            levels.setdefault(lv, []).append(g)
        grid = levels["grid"][-1]
        b = city.buildings
        pos = pd.Index(grid["code"]).get_indexer(_recode(b["grid_code"], prefix))
        pts = _move(np.asarray(b.geometry.values), mirror, centre, dx, dy)
        gg = np.asarray(grid.geometry.values)[pos]
        bx, by = shapely.get_x(pts), shapely.get_y(pts)
        inside = shapely.contains_xy(gg, bx, by)
        radius = np.minimum(shapely.distance(pts, shapely.boundary(gg)) * 0.99, _MAX_JITTER_DEG)
        keep = inside & (radius > 0)
        pools.append(
            pd.DataFrame(
                {
                    "lon": bx[keep],
                    "lat": by[keep],
                    "radius": radius[keep],
                    "households": b["households"].to_numpy()[keep].astype(np.int64),
                    "grid": pos[keep] + offset,
                    "city": i,
                }
            )
        )
        offset += len(grid)
        rows.append((prefix, name, int(k), float(weights[i]), seed + i, mirror, dx, dy))
    units = {
        lv: gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")
        for lv, parts in levels.items()
    }
    cities = pd.DataFrame(
        rows, columns=["code", "name", "grids", "weight", "seed", "mirror", "dx", "dy"]
    )
    return Province(units, cities, pd.concat(pools, ignore_index=True))


# --------------------------------------------------------------------------- incidents


def _months(end: str, months: int, tz: str) -> list[pd.Timestamp]:
    """The local month starts of the ``months`` months before ``end`` (a local date),
    and ``end`` itself: ``months + 1`` bounds."""
    stop = pd.Timestamp(end, tz=tz).normalize().replace(day=1)
    return [stop - pd.DateOffset(months=months - k) for k in range(months + 1)]


def _timestamps(v: np.ndarray) -> pa.Array:
    """µs since the epoch (``_NAT`` for none) as UTC timestamps."""
    return pa.array(v, type=pa.int64(), mask=v == _NAT).cast(pa.timestamp("us", tz="UTC"))


def wkb_points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """Little-endian WKB points as an Arrow binary array, built from the coordinates.

    Hand-written because ``shapely.to_wkb(shapely.points(...))`` creates a GEOS object
    per row (≈ 1 µs each: minutes at 100 M rows); the bytes are the same (a test checks).
    """
    n = len(lon)
    rec = np.empty(n, dtype=[("o", "u1"), ("t", "<u4"), ("x", "<f8"), ("y", "<f8")])
    rec["o"], rec["t"], rec["x"], rec["y"] = 1, 1, lon, lat
    offsets = np.arange(0, 21 * (n + 1), 21, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    )


def _geo_metadata() -> bytes:
    crs = pyproj.CRS("EPSG:4326").to_json_dict()
    meta = {
        "version": "1.0.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"], "crs": crs}},
    }
    return json.dumps(meta).encode()


def incident_chunks(
    province: Province,
    n: int,
    *,
    months: int = 12,
    end: str = "2026-12-01",
    seed: int = 7,
    tz: str = TIMEZONE,
    only: set[str] | None = None,
) -> Iterator[tuple[str, str, pa.Table, dict[str, np.ndarray]]]:
    """``(month, city code, table, extra)`` chunks of ≤ :data:`CHUNK` rows, in file order
    (month, then city); ``table`` has :data:`HISTORY_SCHEMA`; ``extra`` the same rows'
    ``lon``, ``lat``, ``grid`` (position in ``units["grid"]``), ``accepted_at``,
    ``dispatched_at``, ``closed_at`` (µs since the epoch, or NaT's int) for imports and
    checks. Ids run from 1 in that order. Each chunk has its own random stream (seeded by
    ``seed``, month, city and chunk number): the rows do not depend on anything else, and
    ``only`` (a set of ``YYYY-MM``) yields just those months' chunks, the same rows."""
    if n < 0:
        raise InvalidInput("n", n, "a non-negative number of incidents")
    cats = load_categories()
    cat_codes = np.array(cats.index, dtype=object)
    share = cats["share"].to_numpy(float)
    limit_us = (cats["limit_hours"].to_numpy(float) * _US_PER_H).astype(np.int64)
    bounds = _months(end, months, tz)
    b_us = np.array([b.value // 1000 for b in bounds], dtype=np.int64)
    now_us = int(b_us[-1])
    # a 1 %/month adoption growth and the city's population: rows per (month, city)
    m_w = (b_us[1:] - b_us[:-1]) * 1.01 ** np.arange(months)
    c_w = province.cities["weight"].to_numpy(float)
    split = _allocate(np.outer(m_w, c_w).ravel(), n, 0).reshape(months, len(c_w))
    pool = province.pool
    by_city = []
    for ci in range(len(c_w)):
        p = pool[pool["city"] == ci]
        cw = np.cumsum(p["households"].to_numpy(float))
        by_city.append(
            (
                p["lon"].to_numpy(),
                p["lat"].to_numpy(),
                p["radius"].to_numpy(),
                p["grid"].to_numpy(),
                cw / cw[-1],
            )
        )
    hour_w = np.array(
        [1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 10, 8, 8, 10, 10, 9, 8, 7, 6, 5, 4, 2, 1]
    )
    hour_p = hour_w / hour_w.sum()
    next_id = 1
    for mi in range(months):
        month = bounds[mi].strftime("%Y-%m")
        days = int((b_us[mi + 1] - b_us[mi]) // (24 * _US_PER_H))
        if only is not None and month not in only:
            next_id += int(split[mi].sum())
            continue
        for ci, code in enumerate(province.cities["code"]):
            todo = int(split[mi, ci])
            part = 0
            while todo > 0:
                k = min(CHUNK, todo)
                rng = np.random.default_rng([seed, mi, ci, part])
                lon0, lat0, rad, grid, cum = by_city[ci]
                pick = np.minimum(np.searchsorted(cum, rng.random(k), side="right"), len(cum) - 1)
                r = rad[pick] * np.sqrt(rng.random(k))
                a = rng.random(k) * 2 * np.pi
                lon = lon0[pick] + r * np.cos(a)
                lat = lat0[pick] + r * np.sin(a)
                c = rng.choice(len(cat_codes), size=k, p=share / share.sum())
                rep = (
                    b_us[mi]
                    + rng.integers(0, days, k) * 24 * _US_PER_H
                    + rng.choice(24, size=k, p=hour_p) * _US_PER_H
                    + rng.integers(0, _US_PER_H, k)
                )
                due = rep + limit_us[c]
                acc = rep + (rng.exponential(0.3, k) * _US_PER_H).astype(np.int64)
                dis = acc + (rng.exponential(1.0, k) * _US_PER_H).astype(np.int64)
                res = dis + (limit_us[c] * 0.35 * np.exp(rng.normal(0.0, 0.75, k))).astype(np.int64)
                clo = res + (rng.exponential(20.0, k) * _US_PER_H).astype(np.int64)
                u = rng.random(k)
                dropped = u < 0.04  # rejected / duplicate: closed only
                stalled = (u >= 0.04) & (u < 0.06)  # never resolved
                rej_at = rep + (rng.exponential(2.0, k) * _US_PER_H).astype(np.int64)
                status = np.full(k, "reported", dtype=object)
                nat = _NAT
                a_at = np.where(acc <= now_us, acc, nat)
                d_at = np.where(dis <= now_us, dis, nat)
                status[a_at != nat] = "accepted"
                status[d_at != nat] = "dispatched"
                ok = ~dropped & ~stalled
                s_at = np.where(ok & (res <= now_us), res, nat)
                c_at = np.where(ok & (clo <= now_us) & (s_at != nat), clo, nat)
                status[s_at != nat] = "resolved"
                status[c_at != nat] = "closed"
                gone = dropped & (rej_at <= now_us)
                a_at[dropped], d_at[dropped] = nat, nat
                status[dropped] = "reported"
                status[gone] = np.where(rng.random(int(gone.sum())) < 0.5, "rejected", "duplicate")
                c_at[gone] = rej_at[gone]
                # done_at as the export writes it: resolved, else closed, else the last
                # lifecycle time (the row's updated_at)
                last = np.maximum.reduce([rep, a_at, d_at, s_at, c_at])
                done = np.where(s_at != nat, s_at, np.where(c_at != nat, c_at, last))
                ids = np.arange(next_id, next_id + k, dtype=np.int64)
                next_id += k

                ts = _timestamps
                table = pa.Table.from_arrays(
                    [
                        pa.array(ids),
                        pa.array(cat_codes[c], type=pa.string()),
                        pa.array(status, type=pa.string()),
                        ts(rep),
                        ts(s_at),
                        ts(due),
                        ts(done),
                        wkb_points(lon, lat),
                    ],
                    schema=HISTORY_SCHEMA,
                )
                extra = {
                    "lon": lon,
                    "lat": lat,
                    "grid": grid[pick],
                    "accepted_at": a_at,
                    "dispatched_at": d_at,
                    "closed_at": c_at,
                }
                yield month, str(code), table, extra
                todo -= k
                part += 1


def write_incidents(
    province: Province,
    folder: str | Path,
    n: int,
    *,
    months: int = 12,
    end: str = "2026-12-01",
    seed: int = 7,
    tz: str = TIMEZONE,
) -> dict[str, int]:
    """Write :func:`incident_chunks` as ``folder/incidents-YYYY-MM-CCCC.parquet``
    (GeoParquet 1.0, one row group per chunk, zstd); returns file name → rows."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    schema = HISTORY_SCHEMA.with_metadata({b"geo": _geo_metadata()})
    written: dict[str, int] = {}
    writer: pq.ParquetWriter | None = None
    current = ""
    for month, code, table, _ in incident_chunks(
        province, n, months=months, end=end, seed=seed, tz=tz
    ):
        name = f"incidents-{month}-{code}.parquet"
        if name != current:
            if writer is not None:
                writer.close()
            writer = pq.ParquetWriter(out / name, schema, compression="zstd")
            current = name
            written[name] = 0
        assert writer is not None
        writer.write_table(table.replace_schema_metadata(schema.metadata))
        written[name] += table.num_rows
    if writer is not None:
        writer.close()
    return written


def import_frame(table: pa.Table, extra: dict[str, np.ndarray]) -> pd.DataFrame:
    """A chunk as the rows of an incident import file (``geogrid incidents import``):
    ``source_id, category, lon, lat, reported_at, status`` and the lifecycle times."""

    def utc(v: np.ndarray) -> pd.Series:
        # the int64 minimum is NaT as datetime64
        return pd.Series(v.view("datetime64[us]")).dt.tz_localize("UTC")

    return pd.DataFrame(
        {
            "source_id": pd.Series(table["id"].to_numpy()).map("p{}".format),
            "category": table["category"].to_numpy(zero_copy_only=False),
            "lon": extra["lon"],
            "lat": extra["lat"],
            "reported_at": table["reported_at"].to_pandas(),
            "status": table["status"].to_numpy(zero_copy_only=False),
            "accepted_at": utc(extra["accepted_at"]),
            "dispatched_at": utc(extra["dispatched_at"]),
            "resolved_at": table["resolved_at"].to_pandas(),
            "closed_at": utc(extra["closed_at"]),
        }
    )


def checksum(folder: str | Path) -> str:
    """SHA-256 over the names and bytes of a folder's history files (determinism)."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).glob("incidents-*.parquet")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()
