"""Synthetic four-level Yulin hierarchy (district → street → community → grid) and buildings.

Only the 7 county polygons are real (``boundaries/yulin/yulin_counties_wgs84.geojson``);
everything below them is generated, deterministically for a seed:

1. **Town/street seats.** Each district gets its real list of towns/streets (names from
   public knowledge of Yulin, about 110 in all). The district seat's 街道 sit around the
   real seat; rural towns are spread over the county by a few Lloyd iterations on uniform
   points (their positions are invented).
2. **Buildings** (the "base records"): urban apartment blocks (tens of households) in
   Gaussian cores around each seat, shop-houses (2-10 households) around market towns,
   and rural houses (1-6 households) in natural villages scattered over the county,
   thinned by a smooth random "terrain" field. About 1.65M households / 5.8M residents.
3. **Top-down partition.** Each level is cut from its parent by a weighted k-means of the
   parent's buildings (households as weights, vectorised Lloyd iterations over all parents
   at once), the Voronoi cells of the centroids (``shapely.voronoi_polygons``) clipped to
   the parent with ``grid_size=1e-7`` degrees (≈1 cm), so siblings share edges and each
   level exactly partitions its parent. Detached parts of a clipped cell are merged into
   the sibling they share the longest edge with.
4. **Counts.** Communities (≈1,600) are allotted to streets, and the ``n_grids`` grids
   (8,798 by default) to communities, by households with largest-remainder rounding:
   urban communities (社区) get about one grid per 300 households, villages (村) fewer
   households per grid (but much larger grids).

All geometry is EPSG:4326 (lon, lat); ``area_m2`` is measured in the demo city's metric CRS
(``geogrid/demo/yulin.toml``: EPSG:4546, CGCS2000 / 3-degree Gauss-Kruger CM 111E).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geogrid.core.crs import area_m2
from geogrid.core.hierarchy import LEVELS
from geogrid.demo.city import METRIC_CRS
from geogrid.errors import InvalidInput

__all__ = [
    "DEFAULT_COUNTIES_PATH",
    "GRID_SIZE",
    "LEVELS",
    "METRIC_CRS",
    "UNIT_COLUMNS",
    "build_buildings",
    "build_demo",
    "build_hierarchy",
    "DemoCity",
]

#: Precision grid of every overlay (degrees, ≈1 cm at Yulin).
GRID_SIZE = 1e-7
#: The four unit levels, top down.
#: The real county polygons (WGS84) in the repository.
DEFAULT_COUNTIES_PATH = (
    Path(__file__).resolve().parents[2] / "boundaries" / "yulin" / "yulin_counties_wgs84.geojson"
)
UNIT_COLUMNS = [
    "code",
    "name",
    "level",
    "parent_code",
    "population",
    "households",
    "area_m2",
    "geometry",
]

# A local equirectangular projection (metres) used for k-means and jitter only.
_LON0, _LAT0 = 110.2, 22.5
_KX = 111_320.0 * math.cos(math.radians(_LAT0))
_KY = 110_574.0
_GROUP_SEP = 1e8  # metres between groups in the 3-D k-means trick

# Building classes.
URBAN, TOWN, RURAL = 0, 1, 2
_HH_SIZE = {URBAN: 3.1, TOWN: 3.5, RURAL: 3.9}  # persons per household
_URBAN_GRID_HH = 300  # target households per urban grid


@dataclass(frozen=True)
class _DistrictSpec:
    seat: tuple[float, float]  # lon, lat (GCJ-02-ish, fine at this scale)
    population: int
    urban_share: float  # residents in the urban core around the seat
    town_share: float  # residents in market towns
    core_sigma_km: float
    streets: tuple[str, ...]  # first entries: the seat's streets (or the seat town)
    urban_offsets_km: dict[str, tuple[float, float]] = field(default_factory=dict)


# fmt: off
_SPECS: dict[str, _DistrictSpec] = {
    "450902": _DistrictSpec(
        (110.15, 22.63), 1_150_000, 0.70, 0.08, 2.6,
        ("玉城街道", "名山街道", "南江街道", "城西街道", "城北街道",
         "大塘镇", "茂林镇", "仁东镇", "仁厚镇"),
        {"玉城街道": (0.0, 0.0), "名山街道": (2.9, 1.2), "南江街道": (0.4, -2.8),
         "城西街道": (-2.9, 0.0), "城北街道": (-0.2, 2.9)},
    ),
    "450903": _DistrictSpec(
        (110.06, 22.58), 380_000, 0.22, 0.14, 1.2,
        ("福绵镇", "成均镇", "樟木镇", "新桥镇", "沙田镇", "石和镇", "洲佳镇"),
        {"福绵镇": (0.0, 0.0)},
    ),
    "450921": _DistrictSpec(
        (110.55, 22.86), 660_000, 0.30, 0.14, 1.5,
        ("容州镇", "杨梅镇", "灵山镇", "六王镇", "黎村镇", "杨村镇", "县底镇", "自良镇",
         "松山镇", "罗江镇", "石头镇", "石寨镇", "十里镇", "容西镇", "浪水镇"),
        {"容州镇": (0.0, 0.0)},
    ),
    "450922": _DistrictSpec(
        (110.26, 22.33), 720_000, 0.30, 0.14, 1.5,
        ("温泉镇", "米场镇", "马坡镇", "珊罗镇", "平乐镇", "沙坡镇", "大桥镇", "乌石镇",
         "良田镇", "清湖镇", "古城镇", "横山镇", "滩面乡", "沙湖乡"),
        {"温泉镇": (0.0, 0.0)},
    ),
    "450923": _DistrictSpec(
        (109.98, 22.27), 1_300_000, 0.26, 0.14, 1.8,
        ("博白镇", "双旺镇", "龙潭镇", "大垌镇", "松旺镇", "大坝镇", "那卜镇", "那林镇",
         "江宁镇", "三滩镇", "黄凌镇", "亚山镇", "旺茂镇", "东平镇", "沙河镇", "菱角镇",
         "新田镇", "凤山镇", "宁潭镇", "文地镇", "英桥镇", "顿谷镇", "水鸣镇", "径口镇",
         "浪平镇", "双凤镇", "永安镇", "沙陂镇"),
        {"博白镇": (0.0, 0.0)},
    ),
    "450924": _DistrictSpec(
        (109.87, 22.74), 560_000, 0.24, 0.14, 1.3,
        ("石南镇", "大平山镇", "葵阳镇", "城隍镇", "山心镇", "沙塘镇", "蒲塘镇", "北市镇",
         "龙安镇", "高峰镇", "小平山镇", "卖酒镇", "洛阳镇"),
        {"石南镇": (0.0, 0.0)},
    ),
    "450981": _DistrictSpec(
        (110.35, 22.70), 1_030_000, 0.36, 0.14, 2.0,
        ("城南街道", "城北街道", "新圩镇", "大里镇", "塘岸镇", "清水口镇", "隆盛镇",
         "大坡外镇", "六麻镇", "新丰镇", "沙垌镇", "平政镇", "白马镇", "大伦镇", "扶新镇",
         "六靖镇", "石窝镇", "清湾镇", "民乐镇", "西埌镇", "民安镇", "山围镇"),
        {"城南街道": (0.2, -1.5), "城北街道": (-0.2, 1.5)},
    ),
}

# Community name material.
_URBAN_NAMES = (
    "江滨", "金桂丽湾", "东门", "西门", "南门", "北门", "中山", "人民", "新民", "城东",
    "城西", "一环", "二环", "民主", "解放", "教育", "广场", "荔园", "桂园", "清湖", "南流",
    "新港", "东环", "大南", "向阳", "胜利", "和平", "文明", "建设", "园林", "环城", "新城",
    "富民", "龙泉", "万花", "金港", "江南", "鹏程", "东明", "水寨", "公园", "秀水", "玉林湾",
    "碧桂", "锦绣", "华景", "南湖", "城站", "北站", "新兴", "团结", "光明", "长安", "绿城",
    "岭南", "云天", "宏达", "世纪", "东方", "金湾", "玉兰", "凤凰", "龙湖", "桂花", "书香",
)
_ESTATE_A = tuple("金银锦华富康福瑞祥嘉兴泰盛安宁丰美和翠朝")
_ESTATE_B = tuple("园苑城湾庭景都港")
_VILLAGE_A = (
    "大", "小", "新", "六", "石", "塘", "山", "那", "旺", "平", "龙", "凤", "沙", "水", "高",
    "长", "白", "黄", "罗", "杨", "陈", "李", "东", "西", "南", "北", "上", "下", "中", "坡",
    "岭", "江", "河", "田", "林", "茶", "桂", "荔", "榕", "竹", "莲", "松", "马", "牛", "鹿",
)
_VILLAGE_B = (
    "垌", "岭", "坡", "塘", "冲", "江", "山", "田", "头", "口", "坪", "沙", "湾", "寨", "屋",
    "甲", "埇", "陂", "根", "背", "面", "洞", "岸", "圩", "桥", "岗", "园", "龙", "安", "和",
)


# fmt: on


@dataclass
class DemoCity:
    """The synthetic city: unit frames per level and the building points.

    Attributes
    ----------
    units : dict[str, GeoDataFrame]
        ``district``, ``street``, ``community``, ``grid`` unit frames (DESIGN.md columns).
    buildings : GeoDataFrame
        ``building_id``, ``households``, ``population``, ``grid_code``, ``kind``
        (``urban|town|rural``), ``geometry`` (Point); see :func:`build_buildings`.
    """

    units: dict[str, gpd.GeoDataFrame]
    buildings: gpd.GeoDataFrame


# --------------------------------------------------------------------------- public API


def build_hierarchy(
    districts: gpd.GeoDataFrame | str | Path | None = None,
    *,
    seed: int = 2016,
    n_grids: int = 8798,
    n_communities: int | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Build the synthetic district → street → community → grid hierarchy.

    Parameters
    ----------
    districts : GeoDataFrame, path or None
        County polygons (EPSG:4326 or any CRS, reprojected) with ``adcode`` (or ``code``)
        and ``name``. Default: the 7 real Yulin counties
        (:data:`DEFAULT_COUNTIES_PATH`). Unknown codes get generated town names.
    seed : int
        Random seed; the same inputs and seed give identical output.
    n_grids : int
        Exact number of grids (default 8,798, the count in the 2016 Yulin report).
    n_communities : int, optional
        Number of communities/villages; default ``round(n_grids * 1600 / 8798)``.

    Returns
    -------
    dict[str, GeoDataFrame]
        Keys ``district``, ``street``, ``community``, ``grid``; each frame has columns
        ``code, name, level, parent_code, population, households, area_m2, geometry``
        (MultiPolygon, EPSG:4326; ``area_m2`` in EPSG:4546). Codes are hierarchical
        (district adcode, then 3 digits per level). Each level partitions its parent.

    Notes
    -----
    The default build (7 counties, ≈360k buildings) takes about 6-7 s of CPU and is
    memoised per ``(seed, n_grids, n_communities)``; the frames returned are copies.
    """
    return build_demo(districts, seed=seed, n_grids=n_grids, n_communities=n_communities).units


def build_buildings(
    districts: gpd.GeoDataFrame | str | Path | None = None,
    *,
    seed: int = 2016,
    n_grids: int = 8798,
    n_communities: int | None = None,
) -> gpd.GeoDataFrame:
    """The building points (base records) of the same build as :func:`build_hierarchy`.

    Returns
    -------
    GeoDataFrame
        ``building_id`` (int64, 1-based, ordered by grid), ``households`` (int),
        ``population`` (int), ``grid_code`` (str), ``kind`` (``urban|town|rural``),
        ``geometry`` (Point, EPSG:4326). Every grid has at least one building; each
        unit's households/population equal the sums over its buildings.
    """
    return build_demo(districts, seed=seed, n_grids=n_grids, n_communities=n_communities).buildings


def build_demo(
    districts: gpd.GeoDataFrame | str | Path | None = None,
    *,
    seed: int = 2016,
    n_grids: int = 8798,
    n_communities: int | None = None,
) -> DemoCity:
    """Units and buildings in one build (see :func:`build_hierarchy`)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInput("seed", seed, "a non-negative integer")
    if districts is None:
        city = _build_default(int(seed), int(n_grids), n_communities)
        return DemoCity({k: v.copy() for k, v in city.units.items()}, city.buildings.copy())
    return _build(_read_districts(districts), int(seed), int(n_grids), n_communities)


# --------------------------------------------------------------------------- driver


@lru_cache(maxsize=2)
def _build_default(seed: int, n_grids: int, n_communities: int | None) -> DemoCity:
    return _build(_read_districts(DEFAULT_COUNTIES_PATH), seed, n_grids, n_communities)


def _read_districts(districts: gpd.GeoDataFrame | str | Path) -> gpd.GeoDataFrame:
    if isinstance(districts, (str, Path)):
        gdf = gpd.read_file(districts)
    elif isinstance(districts, gpd.GeoDataFrame):
        gdf = districts
    else:
        raise InvalidInput("districts", type(districts).__name__, "a GeoDataFrame or a path")
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    code_col = "adcode" if "adcode" in gdf.columns else "code"
    if code_col not in gdf.columns or "name" not in gdf.columns:
        raise InvalidInput(
            "districts", list(gdf.columns), "columns 'adcode' (or 'code') and 'name'"
        )
    codes = gdf[code_col].astype(str).str.strip()
    if not codes.str.fullmatch(r"\d{6}").all() or codes.duplicated().any():
        raise InvalidInput("districts.code", list(codes), "unique 6-digit codes")
    if len(gdf) == 0:
        raise InvalidInput("districts", 0, "at least one district polygon")
    geoms = shapely.set_precision(shapely.make_valid(gdf.geometry.values), GRID_SIZE)
    geoms = np.array([_largest_polygonal(g) for g in geoms], dtype=object)
    out = pd.DataFrame({"code": codes.to_numpy(), "name": gdf["name"].astype(str).to_numpy()})
    out["geometry"] = geoms
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")


def _largest_polygonal(g: shapely.Geometry) -> shapely.Geometry:
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts, grid_size=GRID_SIZE) if len(parts) != 1 else parts[0]


def _spec_for(code: str, name: str, geom: shapely.Geometry) -> _DistrictSpec:
    if code in _SPECS:
        return _SPECS[code]
    p = shapely.point_on_surface(geom)
    area_km2 = float(_area_m2(np.array([geom]))[0]) / 1e6
    n_towns = max(3, round(area_km2 / 120))
    stem = name[:2]
    towns = (f"{stem}镇",) + tuple(f"{stem}{i}镇" for i in range(2, n_towns + 1))
    return _DistrictSpec(
        (p.x, p.y), int(area_km2 * 450), 0.3, 0.14, 1.5, towns, {towns[0]: (0.0, 0.0)}
    )


def _build(
    districts: gpd.GeoDataFrame, seed: int, n_grids: int, n_communities: int | None
) -> DemoCity:
    if n_communities is None:
        n_communities = round(n_grids * 1600 / 8798)
    if n_communities < len(districts) or n_grids < n_communities:
        raise InvalidInput(
            "n_grids", n_grids, f"at least n_communities ({n_communities}) ≥ number of districts"
        )
    specs = [
        _spec_for(c, n, g)
        for c, n, g in zip(
            districts["code"], districts["name"], districts.geometry.values, strict=True
        )
    ]
    rng = np.random.default_rng([seed, 45090])

    # 1. street seats, per district
    street_rows = []  # (district index, name, lon, lat, is_urban_street)
    for di, (geom, spec) in enumerate(zip(districts.geometry.values, specs, strict=True)):
        drng = np.random.default_rng([seed, int(districts["code"].iat[di])])
        street_rows.extend(_street_seats(di, geom, spec, drng))
    st_d = np.array([r[0] for r in street_rows])
    st_name = np.array([r[1] for r in street_rows], dtype=object)
    st_lon = np.array([r[2] for r in street_rows])
    st_lat = np.array([r[3] for r in street_rows])

    # 2. buildings
    parts = []
    for di, (geom, spec) in enumerate(zip(districts.geometry.values, specs, strict=True)):
        drng = np.random.default_rng([seed, int(districts["code"].iat[di]), 1])
        sel = np.flatnonzero(st_d == di)
        parts.append(_district_buildings(di, geom, spec, st_lon[sel], st_lat[sel], drng))
    b = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    pts = shapely.points(b["lon"], b["lat"])
    btree = shapely.STRtree(pts)
    bx, by = _to_local(b["lon"], b["lat"])

    # 3. streets: Voronoi of the seats inside each district
    d_geoms = np.asarray(districts.geometry.values, dtype=object)
    st_geoms = _split_all(d_geoms, st_d, st_lon, st_lat)
    st_geoms = _merge_detached(st_geoms, st_d)
    b_street = _assign(btree, pts, st_geoms)

    # 4. communities: k-means of each street's buildings
    hh = b["households"].astype(float)
    nonrural = np.where(b["kind"] != RURAL, hh, 0.0)
    w_street = (
        np.bincount(b_street, np.where(b["kind"] == URBAN, hh, 0.0), len(st_geoms)) / 4500
        + np.bincount(b_street, np.where(b["kind"] == TOWN, hh, 0.0), len(st_geoms)) / 2000
        + np.bincount(b_street, np.where(b["kind"] == RURAL, hh, 0.0), len(st_geoms)) / 520
    )
    n_b_street = np.bincount(b_street, minlength=len(st_geoms))
    k_street = _allocate(w_street, n_communities, np.minimum(2, n_b_street), n_b_street)
    cm_parent, cm_lon, cm_lat = _seeds(
        bx, by, hh, b_street, k_street, st_geoms, rng, iters=10, order_from=(st_lon, st_lat)
    )
    cm_geoms = _split_all(st_geoms, cm_parent, cm_lon, cm_lat)
    cm_geoms = _merge_detached(cm_geoms, cm_parent)
    b_comm = _assign(btree, pts, cm_geoms)

    # 5. grids: households per community → grid counts → k-means inside each community
    n_cm = len(cm_geoms)
    cm_hh = np.bincount(b_comm, hh, n_cm)
    cm_urban = np.bincount(b_comm, nonrural, n_cm) >= 0.5 * np.maximum(cm_hh, 1)
    u_hh = cm_hh[cm_urban].sum()
    r_hh = cm_hh[~cm_urban].sum()
    alpha = 1.0 if r_hh == 0 else float(np.clip((_URBAN_GRID_HH * n_grids - u_hh) / r_hh, 1, 8))
    w_cm = np.where(cm_urban, cm_hh, cm_hh * alpha)
    n_b_cm = np.bincount(b_comm, minlength=n_cm)
    k_cm = _allocate(w_cm, n_grids, np.ones(n_cm, dtype=int), np.maximum(n_b_cm, 1))
    gr_parent, gr_lon, gr_lat = _seeds(
        bx, by, hh, b_comm, k_cm, cm_geoms, rng, iters=8, order_from=(cm_lon, cm_lat)
    )
    gr_geoms = _split_all(cm_geoms, gr_parent, gr_lon, gr_lat)
    gr_geoms = _merge_detached(gr_geoms, gr_parent)

    # 6. one exact coverage: node all grid edges together, then rebuild the levels upwards
    gr_geoms = _merge_detached(_exact_coverage(gr_geoms), gr_parent, exact=True)
    cm_geoms = _dissolve(gr_geoms, gr_parent, len(cm_geoms))
    st_geoms = _dissolve(cm_geoms, cm_parent, len(st_geoms))
    d_geoms = _dissolve(st_geoms, st_d, len(d_geoms))
    b_grid = _assign(btree, pts, gr_geoms)
    if len(gr_geoms) != n_grids:  # pragma: no cover - guarded by _allocate
        raise RuntimeError(f"built {len(gr_geoms)} grids, expected {n_grids}")

    # 7. every grid gets at least one building
    empty = np.flatnonzero(np.bincount(b_grid, minlength=len(gr_geoms)) == 0)
    if len(empty):
        ps = shapely.point_on_surface(gr_geoms[empty])
        extra_hh = np.ones(len(empty), dtype=np.int64)
        b = {
            "lon": np.r_[b["lon"], shapely.get_x(ps)],
            "lat": np.r_[b["lat"], shapely.get_y(ps)],
            "households": np.r_[b["households"], extra_hh],
            "population": np.r_[b["population"], extra_hh * 4],
            "kind": np.r_[b["kind"], np.full(len(empty), RURAL)],
        }
        b_grid = np.r_[b_grid, empty]

    # 8. codes, names, frames
    return _assemble(
        gpd.GeoDataFrame(districts.drop(columns="geometry"), geometry=d_geoms, crs="EPSG:4326"),
        st_d,
        st_name,
        st_geoms,
        cm_parent,
        cm_geoms,
        gr_parent,
        gr_geoms,
        b,
        b_grid,
        seed,
    )


# --------------------------------------------------------------------------- generation


def _to_local(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(lon) - _LON0) * _KX, (np.asarray(lat) - _LAT0) * _KY


def _seat(spec: _DistrictSpec) -> tuple[np.ndarray, np.ndarray]:
    """The district seat as 0-d arrays (lon, lat), ready for :func:`_to_local`."""
    return np.asarray(spec.seat[0]), np.asarray(spec.seat[1])


def _from_local(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(x) / _KX + _LON0, np.asarray(y) / _KY + _LAT0


def _uniform_in(geom: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform points (lon, lat) inside geom, by rejection from its bounding box."""
    x0, y0, x1, y1 = geom.bounds
    shapely.prepare(geom)
    out = []
    got = 0
    while got < n:
        m = int((n - got) * 2.5) + 16
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        ok = shapely.contains_xy(geom, x, y)
        out.append(np.c_[x[ok], y[ok]])
        got += int(ok.sum())
    return np.concatenate(out)[:n]


def _street_seats(
    di: int, geom: shapely.Geometry, spec: _DistrictSpec, rng: np.random.Generator
) -> list[tuple[int, str, float, float]]:
    """Seat points of each street/town: urban ones around the seat, rural ones spread out."""
    sx, sy = _to_local(*_seat(spec))
    offsets = [
        (float(sx) + dx * 1000, float(sy) + dy * 1000)
        for dx, dy in (spec.urban_offsets_km[n] for n in spec.streets if n in spec.urban_offsets_km)
    ]
    fixed = np.array(offsets, dtype=float).reshape(-1, 2)
    n_rural = len(spec.streets) - len(fixed)
    u = _uniform_in(geom, 6000, rng)
    ux, uy = _to_local(u[:, 0], u[:, 1])
    far = np.hypot(ux - sx, uy - sy) > 5000
    cand = np.flatnonzero(far) if far.sum() >= n_rural else np.arange(len(ux))
    init = rng.choice(cand, n_rural, replace=False)
    cx = np.r_[fixed[:, 0], ux[init]]
    cy = np.r_[fixed[:, 1], uy[init]]
    nf = len(fixed)
    for _ in range(12):
        _, a = cKDTree(np.c_[cx, cy]).query(np.c_[ux, uy])
        cnt = np.bincount(a, minlength=len(cx))
        mx = np.bincount(a, ux, len(cx))
        my = np.bincount(a, uy, len(cx))
        ok = cnt > 0
        ok[:nf] = False
        cx[ok] = mx[ok] / cnt[ok]
        cy[ok] = my[ok] / cnt[ok]
    lon, lat = _from_local(cx, cy)
    # keep seats inside the county (a centroid of a concave region may fall outside)
    inside = shapely.contains_xy(geom, lon, lat)
    if not inside.all():
        tree = cKDTree(np.c_[ux, uy])
        _, j = tree.query(np.c_[cx[~inside], cy[~inside]])
        lon[~inside], lat[~inside] = u[j, 0], u[j, 1]
    urban_names = [n for n in spec.streets if n in spec.urban_offsets_km]
    rural_names = [n for n in spec.streets if n not in spec.urban_offsets_km]
    names = urban_names + rural_names
    order = {n: i for i, n in enumerate(spec.streets)}
    rows = [(di, n, float(lon[i]), float(lat[i])) for i, n in enumerate(names)]
    rows.sort(key=lambda r: order[r[1]])
    return rows


def _terrain(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth random field (mean 0, sd ≈ 1): hills where it is low."""
    f = np.zeros_like(x)
    k = 7
    for _ in range(k):
        wl = rng.uniform(6_000, 30_000)
        th = rng.uniform(0, np.pi)
        ph = rng.uniform(0, 2 * np.pi)
        f += np.cos((x * np.cos(th) + y * np.sin(th)) * 2 * np.pi / wl + ph)
    return f * math.sqrt(2.0 / k)


def _jitter_inside(
    geom: shapely.Geometry,
    cx: np.ndarray,
    cy: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points around local centres, resampled until inside geom (lon, lat out)."""
    n = len(cx)
    lon = np.empty(n)
    lat = np.empty(n)
    todo = np.arange(n)
    for _ in range(30):
        x = cx[todo] + rng.normal(0, 1, len(todo)) * sigma[todo]
        y = cy[todo] + rng.normal(0, 1, len(todo)) * sigma[todo]
        lo, la = _from_local(x, y)
        ok = shapely.contains_xy(geom, lo, la)
        lon[todo[ok]] = lo[ok]
        lat[todo[ok]] = la[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            break
    if len(todo):  # give up: uniform points inside the county
        u = _uniform_in(geom, len(todo), rng)
        lon[todo], lat[todo] = u[:, 0], u[:, 1]
    return lon, lat


def _district_buildings(
    di: int,
    geom: shapely.Geometry,
    spec: _DistrictSpec,
    st_lon: np.ndarray,
    st_lat: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    shapely.prepare(geom)
    pop = spec.population
    hh_u = pop * spec.urban_share / _HH_SIZE[URBAN]
    hh_t = pop * spec.town_share / _HH_SIZE[TOWN]
    hh_r = pop * (1 - spec.urban_share - spec.town_share) / _HH_SIZE[RURAL]
    sx, sy = _to_local(*_seat(spec))
    stx, sty = _to_local(st_lon, st_lat)
    n_urban_st = len(spec.urban_offsets_km)
    core_sigma = spec.core_sigma_km * 1000

    # urban core: mixture of the seat core and the seat streets' sub-centres
    n_u = int(hh_u / 30)
    centres_x = np.r_[sx, stx[:n_urban_st]]
    centres_y = np.r_[sy, sty[:n_urban_st]]
    sig = np.r_[core_sigma, np.full(n_urban_st, core_sigma * 0.55)]
    wts = np.r_[1.0, np.full(n_urban_st, 0.5 / max(n_urban_st, 1))]
    c = rng.choice(len(centres_x), n_u, p=wts / wts.sum())
    # heavy-ish tail: scale mixture so the city thins out gradually
    scale = sig[c] * np.sqrt(rng.gamma(3.0, 1 / 3.0, n_u))
    ulon, ulat = _jitter_inside(geom, centres_x[c], centres_y[c], scale, rng)
    ux, uy = _to_local(ulon, ulat)
    d = np.hypot(ux - sx, uy - sy) / core_sigma
    u_hh = np.rint(rng.lognormal(np.log(22), 0.55, n_u) * (1 + 1.2 * np.exp(-(d**2)))).clip(6, 200)
    u_hh *= hh_u / u_hh.sum()
    u_hh = np.maximum(np.rint(u_hh), 4)

    # market towns: around each non-core seat
    rural_st = np.arange(n_urban_st, len(stx))
    tw = rng.lognormal(0, 0.5, len(rural_st))
    n_t = int(hh_t / 4.2)
    if len(rural_st):
        c = rural_st[rng.choice(len(rural_st), n_t, p=tw / tw.sum())]
        tsig = 350 + 250 * rng.random(len(stx))
        tlon, tlat = _jitter_inside(geom, stx[c], sty[c], tsig[c], rng)
        t_hh = (2 + rng.poisson(2.2, n_t)).clip(2, 10).astype(float)
    else:
        tlon = tlat = t_hh = np.empty(0)

    # rural: natural villages thinned by terrain, houses around them
    n_r = int(hh_r / 2.6)
    n_v = max(int(n_r / 75), 1)
    cand = _uniform_in(geom, n_v * 4, rng)
    cx, cy = _to_local(cand[:, 0], cand[:, 1])
    f = _terrain(rng, cx, cy)
    keep = rng.random(len(cx)) < 1 / (1 + np.exp(-2.2 * (f + 0.4)))
    # not inside the dense urban core
    keep &= np.hypot(cx - sx, cy - sy) > 0.8 * core_sigma
    vx, vy = cx[keep][:n_v], cy[keep][:n_v]
    vw = rng.lognormal(0, 0.7, len(vx))
    c = rng.choice(len(vx), n_r, p=vw / vw.sum())
    vsig = 90 + 110 * np.sqrt(vw / vw.mean())
    rlon, rlat = _jitter_inside(geom, vx[c], vy[c], vsig[c], rng)
    r_hh = (1 + rng.poisson(1.6, n_r)).clip(1, 6).astype(float)

    lon = np.r_[ulon, tlon, rlon]
    lat = np.r_[ulat, tlat, rlat]
    households = np.r_[u_hh, t_hh, r_hh].astype(np.int64)
    kind = np.r_[np.full(n_u, URBAN), np.full(len(tlon), TOWN), np.full(n_r, RURAL)]
    size = np.array([_HH_SIZE[URBAN], _HH_SIZE[TOWN], _HH_SIZE[RURAL]])[kind]
    population = households + rng.poisson(households * (size - 1))
    return {
        "lon": lon,
        "lat": lat,
        "households": households,
        "population": population.astype(np.int64),
        "kind": kind,
    }


# --------------------------------------------------------------------------- partitioning


def _allocate(weights: np.ndarray, total: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integers ∝ weights, lo ≤ x ≤ hi, summing to total (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.maximum(np.asarray(hi, dtype=np.int64), lo)
    if lo.sum() > total or hi.sum() < total:
        raise InvalidInput("n_grids", total, f"between {lo.sum()} and {hi.sum()} for this input")

    def counts(t: float) -> np.ndarray:
        return np.clip(np.floor(w * t), lo, hi).astype(np.int64)

    a, z = 0.0, 1.0
    while counts(z).sum() < total:
        z *= 2
    for _ in range(100):
        m = (a + z) / 2
        if counts(m).sum() <= total:
            a = m
        else:
            z = m
    x = counts(a)
    short = total - int(x.sum())
    if short:
        frac = w * a - np.floor(w * a)
        frac[x >= hi] = -1
        order = np.lexsort((np.arange(len(w)), -frac))
        x[order[:short]] += 1
    return x


def _seeds(
    bx: np.ndarray,
    by: np.ndarray,
    w: np.ndarray,
    group: np.ndarray,
    k: np.ndarray,
    parents: np.ndarray,
    rng: np.random.Generator,
    *,
    iters: int,
    order_from: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted k-means seeds (lon, lat) in every group at once, inside their parent.

    Returns parent index, lon, lat of the seeds, sorted by parent then by distance from the
    parent's own seed (so child 001 is the most central one).
    """
    n = len(bx)
    g_count = len(k)
    ww = np.maximum(w, 1e-9)
    key = np.log(rng.random(n)) / ww
    order = np.lexsort((-key, group))
    gs = group[order]
    starts = np.searchsorted(gs, np.arange(g_count))
    rank = np.arange(n) - starts[gs]
    chosen = order[rank < k[gs]]
    sg = group[chosen]
    sx, sy = bx[chosen].copy(), by[chosen].copy()
    pts3 = np.c_[bx, by, group * _GROUP_SEP]
    for _ in range(iters):
        _, a = cKDTree(np.c_[sx, sy, sg * _GROUP_SEP]).query(pts3, workers=-1)
        tw = np.bincount(a, ww, len(sx))
        ok = tw > 0
        sx[ok] = np.bincount(a, ww * bx, len(sx))[ok] / tw[ok]
        sy[ok] = np.bincount(a, ww * by, len(sx))[ok] / tw[ok]
    lon, lat = _from_local(sx, sy)
    # a centroid may fall outside a concave parent: use its nearest building instead
    inside = shapely.contains_xy(parents[sg], lon, lat)
    if not inside.all():
        bad = np.flatnonzero(~inside)
        _, j = cKDTree(pts3).query(np.c_[sx[bad], sy[bad], sg[bad] * _GROUP_SEP])
        lon[bad], lat[bad] = _from_local(bx[j], by[j])
    # groups without buildings: one seed at the parent's representative point
    missing = np.flatnonzero(np.bincount(sg, minlength=g_count) == 0)
    if len(missing):
        rp = shapely.point_on_surface(parents[missing])
        sg = np.r_[sg, missing]
        lon = np.r_[lon, shapely.get_x(rp)]
        lat = np.r_[lat, shapely.get_y(rp)]
    # drop exact duplicates (would merge Voronoi cells)
    _, first = np.unique(np.c_[sg, lon, lat], axis=0, return_index=True)
    keep = np.zeros(len(sg), dtype=bool)
    keep[first] = True
    sg, lon, lat = sg[keep], lon[keep], lat[keep]
    ox, oy = order_from
    dist = np.hypot((lon - ox[sg]) * _KX, (lat - oy[sg]) * _KY)
    o = np.lexsort((dist, sg))
    return sg[o], lon[o], lat[o]


def _split_all(
    parents: np.ndarray, seed_parent: np.ndarray, lon: np.ndarray, lat: np.ndarray
) -> np.ndarray:
    """Voronoi cells of the seeds clipped to their parent, in seed order."""
    out = np.empty(len(seed_parent), dtype=object)
    starts = np.searchsorted(seed_parent, np.arange(len(parents) + 1))
    for p in range(len(parents)):
        s, e = starts[p], starts[p + 1]
        if e - s == 0:
            continue
        parent = parents[p]
        if e - s == 1:
            out[s] = parent
            continue
        mp = shapely.multipoints(np.c_[lon[s:e], lat[s:e]])
        cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=parent, ordered=True))
        out[s:e] = shapely.intersection(cells, parent, grid_size=GRID_SIZE)
    return out


def _merge_detached(
    geoms: np.ndarray, parent: np.ndarray, rounds: int = 4, *, exact: bool = False
) -> np.ndarray:
    """Merge every detached part of a unit into the sibling it shares the longest edge with.

    The largest part of each unit stays. With ``exact=False`` only siblings (same parent)
    receive parts and a unit keeps a detached part no sibling shares an edge with. With
    ``exact=True`` (an exact coverage) a sibling is preferred, else any unit sharing an
    edge, and parts are joined by coverage union.
    """
    geoms = geoms.copy()
    for _ in range(rounds):
        parts, idx = shapely.get_parts(geoms, return_index=True)
        if len(parts) == len(geoms):
            break
        area = shapely.area(parts)
        order = np.lexsort((-area, idx))
        is_main = np.zeros(len(parts), dtype=bool)
        first = np.r_[True, idx[order][1:] != idx[order][:-1]]
        is_main[order[first]] = True
        main = np.empty(len(geoms), dtype=object)
        main[idx[is_main]] = parts[is_main]
        orphans = np.flatnonzero(~is_main)
        tree = shapely.STRtree(main)
        oi, mj = tree.query(parts[orphans], predicate="intersects")
        src = idx[orphans[oi]]
        same = parent[mj] == parent[src]
        ok = (mj != src) & (same | exact)
        oi, mj, same = oi[ok], mj[ok], same[ok]
        shared = shapely.length(
            shapely.intersection(
                shapely.boundary(parts[orphans[oi]]),
                shapely.boundary(main[mj]),
                grid_size=GRID_SIZE,
            )
        )
        same &= shared > 0
        best = np.full(len(orphans), -1)
        if len(oi):
            o = np.lexsort((-shared, ~same, oi))
            firsts = np.r_[True, oi[o][1:] != oi[o][:-1]]
            sel = o[firsts]
            good = shared[sel] > 0
            best[oi[sel[good]]] = mj[sel[good]]
        receiver = np.where(best >= 0, best, idx[orphans])
        new = main.copy()
        groups = pd.Series(orphans).groupby(receiver).apply(list)
        changed = False
        for key, olist in groups.items():
            r = int(cast(int, key))
            pieces = [main[r]] + [parts[o] for o in olist]
            new[r] = (
                shapely.coverage_union_all(pieces)
                if exact
                else shapely.union_all(pieces, grid_size=GRID_SIZE)
            )
            changed |= bool(np.any(best[np.searchsorted(orphans, olist)] >= 0))
        geoms = new
        if not changed:
            break
    return geoms


def _exact_coverage(geoms: np.ndarray) -> np.ndarray:
    """Rebuild polygons that *nearly* tile as an exact coverage.

    Units clipped from different parents meet along edges that were rounded separately
    (≈1 cm apart). All edges are noded together on the precision grid and polygonized;
    each face goes to the unit containing its interior point (a sliver face: to the unit
    it overlaps most), and each unit is the coverage union of its faces.
    """
    lines = shapely.union_all(shapely.boundary(geoms), grid_size=GRID_SIZE)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    tree = shapely.STRtree(geoms)
    fi, gi = tree.query(shapely.point_on_surface(faces), predicate="within")
    owner = np.full(len(faces), -1, dtype=np.int64)
    once = np.bincount(fi, minlength=len(faces)) == 1
    sel = once[fi]
    owner[fi[sel]] = gi[sel]
    todo = np.flatnonzero(owner < 0)
    if len(todo):
        ti, tj = tree.query(faces[todo], predicate="intersects")
        ov = shapely.area(shapely.intersection(faces[todo[ti]], geoms[tj]))
        o = np.lexsort((tj, -ov, ti))
        first = np.r_[True, ti[o][1:] != ti[o][:-1]]
        owner[todo[ti[o][first]]] = tj[o][first]
    if (owner < 0).any():  # pragma: no cover - a face outside every unit
        raise RuntimeError("exact coverage: a face belongs to no unit")
    return _dissolve(faces, owner, len(geoms))


def _dissolve(parts: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Coverage union of parts per owner index (0..n-1)."""
    out = np.empty(n, dtype=object)
    counts = np.bincount(owner, minlength=n)
    single = counts == 1
    pos = np.flatnonzero(single[owner])
    out[owner[pos]] = parts[pos]
    o = np.argsort(owner, kind="stable")
    starts = np.r_[0, np.cumsum(counts)]
    for u in np.flatnonzero(counts > 1):
        out[u] = shapely.coverage_union_all(parts[o[starts[u] : starts[u + 1]]])
    return out


def _assign(tree: shapely.STRtree, pts: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Index of the polygon each point falls in (boundary points: the lowest index)."""
    gi, pi = tree.query(geoms, predicate="intersects")
    out = np.full(len(pts), -1, dtype=np.int64)
    o = np.lexsort((gi, pi))
    pi, gi = pi[o], gi[o]
    first = np.r_[True, pi[1:] != pi[:-1]]
    out[pi[first]] = gi[first]
    miss = np.flatnonzero(out < 0)
    if len(miss):  # in a sub-centimetre crack: nearest polygon
        _, nearest = shapely.STRtree(geoms).query_nearest(pts[miss], all_matches=False)
        out[miss] = nearest
    return out


# --------------------------------------------------------------------------- assembly


def _area_m2(geoms: np.ndarray) -> np.ndarray:
    return np.asarray(area_m2(np.asarray(geoms, dtype=object), crs=METRIC_CRS), dtype=float)


def _multi(geoms: np.ndarray) -> np.ndarray:
    out = np.asarray(geoms, dtype=object).copy()
    poly = shapely.get_type_id(out) == 3
    out[poly] = [shapely.MultiPolygon([g]) for g in out[poly]]
    return out


def _name_pool(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Urban community names (the pilot names first) and village names, shuffled."""
    urban = list(_URBAN_NAMES)
    head, rest = urban[:2], urban[2:]
    rng.shuffle(rest)
    extra = [a + b for a in _ESTATE_A for b in _ESTATE_B if a + b not in urban]
    rng.shuffle(extra)
    rest += extra
    villages = [a + b for a in _VILLAGE_A for b in _VILLAGE_B if a != b]
    rng.shuffle(villages)
    return head + rest, villages


def _assemble(
    districts: gpd.GeoDataFrame,
    st_d: np.ndarray,
    st_name: np.ndarray,
    st_geoms: np.ndarray,
    cm_parent: np.ndarray,
    cm_geoms: np.ndarray,
    gr_parent: np.ndarray,
    gr_geoms: np.ndarray,
    b: dict[str, np.ndarray],
    b_grid: np.ndarray,
    seed: int,
) -> DemoCity:
    d_code = districts["code"].to_numpy(dtype=object)
    # codes: rank within parent (children are already sorted by parent)
    st_rank = _rank(st_d)
    st_code = np.array(
        [f"{d_code[d]}{r + 1:03d}" for d, r in zip(st_d, st_rank, strict=True)], dtype=object
    )
    cm_rank = _rank(cm_parent)
    cm_code = np.array(
        [f"{st_code[p]}{r + 1:03d}" for p, r in zip(cm_parent, cm_rank, strict=True)], dtype=object
    )
    gr_rank = _rank(gr_parent)
    gr_code = np.array(
        [f"{cm_code[p]}{r + 1:03d}" for p, r in zip(gr_parent, gr_rank, strict=True)], dtype=object
    )

    # building → all levels
    b_cm = gr_parent[b_grid]
    b_st = cm_parent[b_cm]
    b_d = st_d[b_st]
    hh = b["households"]
    pop = b["population"]

    def sums(idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.bincount(idx, hh, n).round().astype(np.int64),
            np.bincount(idx, pop, n).round().astype(np.int64),
        )

    # community names: 社区 when most households are urban/town, else 村
    n_cm = len(cm_geoms)
    cm_hh = np.bincount(b_cm, hh, n_cm)
    cm_nonrural = np.bincount(b_cm, np.where(b["kind"] != RURAL, hh, 0), n_cm)
    cm_is_urban = cm_nonrural >= 0.5 * np.maximum(cm_hh, 1)
    cm_name = np.empty(n_cm, dtype=object)
    for d in range(len(districts)):
        drng = np.random.default_rng([seed, int(d_code[d]), 2])
        urban_pool, village_pool = _name_pool(drng)
        used: set[str] = set()
        ui = vi = 0
        for s in np.flatnonzero(st_d == d):
            stem = _stem(st_name[s])
            first_urban = True
            for c in np.flatnonzero(cm_parent == s):
                if cm_is_urban[c]:
                    own = stem + "社区"
                    if first_urban and not st_name[s].endswith("街道") and own not in used:
                        nm = own
                    else:
                        nm = ""
                        while not nm or nm in used:
                            base = urban_pool[ui % len(urban_pool)]
                            lap = ui // len(urban_pool)
                            nm = base + ("" if lap == 0 else "二三四五六七八九"[min(lap, 8) - 1])
                            nm += "社区"
                            ui += 1
                    first_urban = False
                else:
                    nm = ""
                    while not nm or nm in used:
                        base = village_pool[vi % len(village_pool)]
                        lap = vi // len(village_pool)
                        nm = base + ("" if lap == 0 else "新" * lap) + "村"
                        vi += 1
                used.add(nm)
                cm_name[c] = nm
    gr_name = np.array(
        [f"{cm_name[p]}第{r + 1}网格" for p, r in zip(gr_parent, gr_rank, strict=True)],
        dtype=object,
    )

    frames = {}
    d_geoms = np.asarray(districts.geometry.values, dtype=object)
    levels = [
        ("district", d_code, districts["name"].to_numpy(dtype=object), None, d_geoms, b_d),
        ("street", st_code, st_name, d_code[st_d], st_geoms, b_st),
        ("community", cm_code, cm_name, st_code[cm_parent], cm_geoms, b_cm),
        ("grid", gr_code, gr_name, cm_code[gr_parent], gr_geoms, b_grid),
    ]
    for level, code, name, parent_code, geoms, bidx in levels:
        h, p = sums(bidx, len(code))
        frames[level] = gpd.GeoDataFrame(
            {
                "code": pd.array(code, dtype=object),
                "name": pd.array(name, dtype=object),
                "level": level,
                "parent_code": (
                    np.full(len(code), None, dtype=object) if parent_code is None else parent_code
                ),
                "population": p,
                "households": h,
                "area_m2": _area_m2(geoms),
                "geometry": _multi(geoms),
            },
            geometry="geometry",
            crs="EPSG:4326",
        )

    # buildings ordered by grid code, ids 1..N
    o = np.lexsort((b["lat"], b["lon"], gr_code[b_grid]))
    kinds = np.array(["urban", "town", "rural"], dtype=object)
    buildings = gpd.GeoDataFrame(
        {
            "building_id": np.arange(1, len(o) + 1, dtype=np.int64),
            "households": b["households"][o].astype(np.int64),
            "population": b["population"][o].astype(np.int64),
            "grid_code": gr_code[b_grid[o]],
            "kind": kinds[b["kind"][o]],
            "geometry": shapely.points(b["lon"][o], b["lat"][o]),
        },
        geometry="geometry",
        crs="EPSG:4326",
    )
    return DemoCity(frames, buildings)


def _rank(parent: np.ndarray) -> np.ndarray:
    """0-based position of each element within its (contiguous) parent block."""
    parent = np.asarray(parent)
    starts = np.r_[0, np.flatnonzero(parent[1:] != parent[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(parent)])
    return np.arange(len(parent)) - np.repeat(starts, lengths)


def _stem(name: str) -> str:
    for suffix in ("街道", "镇", "乡"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
