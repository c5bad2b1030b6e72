"""A year of synthetic incidents (事件) for the demo, fully vectorised and deterministic.

Model
-----
* **When.** Day weights = weekly rhythm (Sunday ≈ 0.65 of a weekday, Saturday ≈ 0.8) ×
  slow adoption growth (+30% over the year) × holiday dips (Spring Festival, Labour Day,
  National Day). Each category has a seasonal factor (sanitation peaks in July, drainage
  in the dragon-boat rains of June and the typhoons of August, greening in spring, …),
  normalised so that categories keep their catalogue ``share`` over the year.
  Local (Asia/Shanghai) time of day: patrol peaks for workers, a wider day-and-evening
  profile for residents, late evening for noise. Stored in UTC.
* **Where.** Mostly at buildings drawn by population (category-specific preference for
  urban/town/rural buildings) with a few metres of jitter kept inside the building's grid;
  some along busy roads (straight lines from each town centre to its district seat and
  from each seat to the city centre); and 4 planted hot spots whose counts grow through
  the year. ``grid_code`` is the grid containing the point.
* **Who.** Reported by the grid's worker (patrol, 网格员上报) or a resident, by category.
* **Lifecycle.** Acceptance, dispatch (longer when the category escalates above the
  grid), resolution (lognormal around 0.35 × the category's time limit: ≈8% overdue),
  closure (resident confirmation ≈ a day later); some rejected or duplicate; a few stall.
  Status is the last stage reached by ``now`` (the end of the window), so recent incidents
  are still open. Rejected and duplicate incidents have only ``closed_at`` (as in
  :mod:`geogrid.core.lifecycle`).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geogrid.core.catalogue import load_categories
from geogrid.demo.city import TIMEZONE
from geogrid.errors import InvalidInput

__all__ = ["INCIDENT_COLUMNS", "LOCAL_TZ", "build_incidents", "plant_hotspots"]

#: the demo city's time zone (``geogrid/demo/yulin.toml``)
LOCAL_TZ = TIMEZONE
INCIDENT_COLUMNS = [
    "source_id", "category", "description", "lon", "lat", "reported_at", "reporter_kind",
    "reporter_id", "status", "accepted_at", "dispatched_at", "resolved_at", "closed_at",
    "grid_code",
]  # fmt: skip

_KX = 111_320.0 * np.cos(np.radians(22.5))  # metres per degree of longitude at Yulin
_KY = 110_574.0
_KINDS = ("urban", "town", "rural")
_HOUR_NS = 3_600_000_000_000
_NAT = np.iinfo(np.int64).min
_STATUSES = (
    "reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "rejected",
    "duplicate",
)  # fmt: skip

# category → (urban, town, rural) preference multipliers on population weights
_KIND_PREF = {
    "vendor": (3.0, 2.5, 0.3),
    "road_occupation": (2.5, 2.5, 0.4),
    "illegal_ads": (2.5, 1.5, 0.4),
    "noise": (2.0, 1.2, 0.5),
    "illegal_construction": (0.8, 1.2, 1.2),
    "greening": (1.5, 1.0, 0.6),
    "drainage": (1.2, 1.0, 0.9),
    "sanitation": (1.1, 1.5, 0.9),
}
# category → probability the incident lies on a busy road rather than at a building
_ROAD_P = {
    "road_occupation": 0.45, "vendor": 0.35, "illegal_ads": 0.30, "facility_damage": 0.25,
    "drainage": 0.20, "greening": 0.20, "sanitation": 0.12, "safety_hazard": 0.12,
}  # fmt: skip
_ROAD_P_DEFAULT = 0.04
# category → probability it is found on patrol by the grid worker (else a resident)
_WORKER_P = {
    "illegal_ads": 0.85, "road_occupation": 0.80, "vendor": 0.80, "sanitation": 0.70,
    "greening": 0.70, "illegal_construction": 0.60, "facility_damage": 0.60,
    "safety_hazard": 0.60, "drainage": 0.50, "neighbour_dispute": 0.35, "noise": 0.20,
    "other": 0.50,
}  # fmt: skip
_WORKER_P_DEFAULT = 0.55
_DISPATCH_MEDIAN_H = {"grid": 0.2, "community": 1.0, "street": 3.0, "district": 8.0}
_RESOLVE_FRACTION = 0.35  # median resolution time / limit
_RESOLVE_SIGMA = 0.75  # → P(resolution > limit) ≈ 8%

_TEMPLATES = {
    "sanitation": ("垃圾堆放未及时清运", "农贸市场周边烂菜果皮堆积", "垃圾桶满溢，异味明显",
                   "绿化带内乱倒建筑垃圾", "小区公共区域卫生脏乱"),
    "illegal_construction": ("小区内私搭乱建彩钢棚", "楼顶违规加建", "占用公共绿地砌围墙",
                             "未批先建房屋"),
    "road_occupation": ("商铺占道堆放货物", "电动车乱停放占用人行道", "车辆堵塞消防通道",
                        "建材占道堆放"),
    "neighbour_dispute": ("电动车停放堵住车库门引发纠纷", "楼上漏水引发邻里争执",
                          "宅基地边界纠纷", "公共楼道使用引发矛盾"),
    "safety_hazard": ("楼道堆放杂物存在消防隐患", "电动车在楼道内充电", "私拉乱接电线",
                      "危旧房屋墙体开裂", "燃气管道老化"),
    "facility_damage": ("路灯不亮", "井盖破损缺失", "健身器材损坏", "人行道砖松动破损",
                        "护栏损坏"),
    "illegal_ads": ("墙面张贴小广告", "电线杆上乱贴办证广告", "楼道内喷涂小广告"),
    "vendor": ("流动摊贩占道经营", "早市摊点占用车行道", "夜宵摊占道经营油烟扰民"),
    "noise": ("夜间施工噪声扰民", "广场舞音响声音过大", "商铺高音喇叭招揽生意"),
    "greening": ("树枝遮挡路灯需修剪", "绿化带杂草丛生", "台风后树木倒伏", "行道树枯死需补种"),
    "drainage": ("暴雨后路面积水", "下水道堵塞污水外溢", "排水沟淤积", "雨水箅子堵塞"),
    "other": ("群众咨询办事事项", "流浪犬只出没", "其他需协调事项"),
}  # fmt: skip
_SUFFIX = {"worker": "（网格员巡查发现）", "resident": "（群众反映）"}

# (district code preferred, building kind, category, spread m, share of the hot-spot total)
_HOTSPOTS = (
    ("450902", "urban", "sanitation", 70.0, 0.32),  # a market in the Yuzhou core
    ("450981", "urban", "vendor", 90.0, 0.26),  # a night market in Beiliu
    ("450903", "rural", "illegal_construction", 120.0, 0.18),  # peri-urban Fumian
    ("450923", "urban", "drainage", 100.0, 0.24),  # low-lying streets in Bobai
)
_HOTSPOT_SHARE = 0.03  # of all incidents
# Spring Festival (正月初一) dates
_SPRING_FESTIVAL = ("2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26")


def build_incidents(
    grids: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    workers: pd.DataFrame | None = None,
    categories: pd.DataFrame | None = None,
    *,
    n: int = 200_000,
    seed: int = 2025,
    start: str | pd.Timestamp = "2025-12-01",
    days: int = 365,
) -> pd.DataFrame:
    """Synthetic incidents over ``days`` days from ``start`` (local date, Asia/Shanghai).

    Parameters
    ----------
    grids : GeoDataFrame
        Grid units (``code``, ``geometry`` in EPSG:4326), e.g. ``build_hierarchy()["grid"]``.
    buildings : GeoDataFrame
        Building points with ``population``, ``grid_code`` and optionally ``kind``
        (``urban|town|rural``), e.g. :func:`~geogrid.demo.build_buildings`.
    workers : DataFrame, optional
        ``worker_id`` and ``grid_codes`` (lists) from :func:`~geogrid.demo.build_workers`;
        without it worker reports have ``reporter_id`` None.
    categories : DataFrame, optional
        The catalogue indexed by code (``share``, ``limit_hours``, ``escalate_level``);
        default :func:`geogrid.core.catalogue.load_categories`.
    n : int
        Number of incidents (exact).
    seed : int
        Random seed; the same inputs and seed give the same frame.
    start : str or Timestamp
        First local day of the window; ``now`` is the end of the last day.
    days : int
        Length of the window in days.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``reported_at``; columns :data:`INCIDENT_COLUMNS`: ``source_id``
        (``demo-000001`` …), ``category``, ``description`` (Chinese), ``lon``, ``lat``
        (WGS84 degrees), ``reported_at`` (tz-aware UTC), ``reporter_kind``
        (``worker|resident``), ``reporter_id`` (worker_id or None), ``status``,
        ``accepted_at``, ``dispatched_at``, ``resolved_at``, ``closed_at`` (UTC, NaT
        where not reached), ``grid_code`` (the grid containing the point).
        ``attrs["hotspots"]`` lists the planted hot spots and ``attrs["now"]`` the
        time the statuses refer to.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidInput("n", n, "a non-negative integer")
    if not isinstance(days, (int, np.integer)) or days < 1:
        raise InvalidInput("days", days, "a positive number of days")
    if categories is None:
        categories = load_categories()
    try:
        t0 = pd.Timestamp(start)
    except (TypeError, ValueError):
        raise InvalidInput("start", start, "a date such as '2025-12-01'") from None
    t0 = t0.tz_convert(LOCAL_TZ) if t0.tzinfo else t0.tz_localize(LOCAL_TZ)
    t0 = t0.normalize()
    rng = np.random.default_rng([seed, 311])

    cat_codes = np.asarray(categories.index, dtype=object)
    n_cat = len(cat_codes)
    share = categories["share"].to_numpy(dtype=float)
    limit_h = categories["limit_hours"].to_numpy(dtype=float)
    level = categories["escalate_level"].to_numpy(dtype=object)

    # ---- grids and buildings
    grid_codes = grids["code"].astype(str).to_numpy(dtype=object)
    grid_geoms = np.asarray(grids.geometry.values, dtype=object)
    shapely.prepare(grid_geoms)
    bx = shapely.get_x(buildings.geometry.values)
    by = shapely.get_y(buildings.geometry.values)
    bpop = buildings["population"].to_numpy(dtype=float)
    bgrid = pd.Index(grid_codes).get_indexer(buildings["grid_code"].astype(str))
    if (bgrid < 0).any():
        raise InvalidInput("buildings.grid_code", "codes not in grids", "codes of the grids")
    if "kind" in buildings:
        bkind = pd.Index(_KINDS).get_indexer(buildings["kind"])
        bkind[bkind < 0] = 0
    else:
        bkind = np.zeros(len(bx), dtype=np.int64)

    # ---- days × categories intensity
    dates = pd.date_range(t0.tz_localize(None), periods=days, freq="D")
    base = _day_weights(dates)
    season = np.stack([_season(c, dates) for c in cat_codes], axis=1)  # days × cats
    season /= (season * base[:, None]).sum(0) / base.sum()
    lam = base[:, None] * season * share[None, :]

    hotspots = plant_hotspots(buildings, categories, seed=seed)
    n_hot = int(round(_HOTSPOT_SHARE * n)) if len(hotspots) else 0
    n_bg = n - n_hot

    flat = rng.choice(days * n_cat, n_bg, p=(lam / lam.sum()).ravel())
    day = flat // n_cat
    cat = flat % n_cat
    is_hot = np.zeros(n, dtype=bool)
    hot_id = np.full(n, -1)
    if n_hot:
        hw = hotspots["weight"].to_numpy()
        h = rng.choice(len(hotspots), n_hot, p=hw / hw.sum())
        grow = base * (0.15 + np.arange(days) / days) ** 2
        hday = rng.choice(days, n_hot, p=grow / grow.sum())
        hcat = np.where(
            rng.random(n_hot) < 0.75,
            hotspots["category_index"].to_numpy()[h],
            rng.choice(n_cat, n_hot, p=share / share.sum()),
        )
        day = np.r_[day, hday]
        cat = np.r_[cat, hcat]
        is_hot[n_bg:] = True
        hot_id[n_bg:] = h

    # ---- where
    x = np.empty(n)
    y = np.empty(n)
    grid_idx = np.full(n, -1, dtype=np.int64)
    road_p = np.array([_ROAD_P.get(c, _ROAD_P_DEFAULT) for c in cat_codes])
    on_road = (~is_hot) & (rng.random(n) < road_p[cat])
    roads = _roads(bx, by, bpop, buildings["grid_code"].astype(str).to_numpy(dtype=object))
    if len(roads) == 0:
        on_road[:] = False
    if on_road.any():
        r = np.flatnonzero(on_road)
        seg = rng.choice(len(roads), len(r), p=roads[:, 4] / roads[:, 4].sum())
        t = rng.beta(0.6, 0.6, len(r))
        ax, ay, cx, cy = roads[seg, 0], roads[seg, 1], roads[seg, 2], roads[seg, 3]
        dx, dy = (cx - ax) * _KX, (cy - ay) * _KY
        norm = np.maximum(np.hypot(dx, dy), 1.0)
        off = rng.normal(0, 12.0, len(r))
        x[r] = ax + t * (cx - ax) + (-dy / norm) * off / _KX
        y[r] = ay + t * (cy - ay) + (dx / norm) * off / _KY
    if n_hot:
        hs = np.flatnonzero(is_hot)
        spread = hotspots["spread_m"].to_numpy()[hot_id[hs]]
        x[hs] = hotspots["lon"].to_numpy()[hot_id[hs]] + rng.normal(0, 1, len(hs)) * spread / _KX
        y[hs] = hotspots["lat"].to_numpy()[hot_id[hs]] + rng.normal(0, 1, len(hs)) * spread / _KY
    located = on_road | is_hot
    if located.any():
        li = np.flatnonzero(located)
        grid_idx[li] = _locate(grid_geoms, x[li], y[li])
    at_building = grid_idx < 0  # not on a road/hot spot, or fell outside every grid
    if at_building.any():
        ai = np.flatnonzero(at_building)
        b = _draw_buildings(rng, ai, cat[ai], cat_codes, bpop, bkind)
        sigma = np.array([12.0, 15.0, 25.0])[bkind[b]]
        jx = rng.normal(0, 1, len(b)) * sigma / _KX
        jy = rng.normal(0, 1, len(b)) * sigma / _KY
        # keep the point in the building's grid: shrink the jitter below the distance
        # from the building to its grid's boundary (degrees)
        ub, inv = np.unique(b, return_inverse=True)
        room = shapely.distance(
            shapely.points(bx[ub], by[ub]), shapely.boundary(grid_geoms[bgrid[ub]])
        )[inv]
        step = np.hypot(jx, jy)
        shrink = np.minimum(1.0, 0.9 * room / np.maximum(step, 1e-12))
        x[ai] = bx[b] + jx * shrink
        y[ai] = by[b] + jy * shrink
        grid_idx[ai] = bgrid[b]

    # ---- who
    worker_p = np.array([_WORKER_P.get(c, _WORKER_P_DEFAULT) for c in cat_codes])
    by_worker = rng.random(n) < worker_p[cat]
    worker_ids: list[str] = []
    reporter = np.full(n, -1, dtype=np.int64)  # index into worker_ids
    if workers is not None and len(workers):
        ex = workers[["worker_id", "grid_codes"]].explode("grid_codes")
        ex = ex.drop_duplicates("grid_codes")
        worker_ids = [str(v) for v in pd.unique(ex["worker_id"])]
        wpos = pd.Index(worker_ids).get_indexer(pd.Index(ex["worker_id"].astype(str)))
        per_grid = np.full(len(grid_codes), -1, dtype=np.int64)
        gi = pd.Index(grid_codes).get_indexer(pd.Index(ex["grid_codes"].astype(str)))
        per_grid[gi[gi >= 0]] = wpos[gi >= 0]
        reporter[by_worker] = per_grid[grid_idx[by_worker]]

    # ---- when (local time of day → UTC ns)
    tod = _time_of_day(rng, by_worker, cat, cat_codes)
    start_ns = t0.value  # UTC ns of local midnight
    rep = start_ns + day.astype(np.int64) * 24 * _HOUR_NS + (tod * 3600).astype(np.int64) * 10**9
    now_ns = start_ns + days * 24 * _HOUR_NS

    # ---- lifecycle (hours after the report)
    lim = limit_h[cat]
    acc_h = rng.lognormal(np.log(np.where(by_worker, 0.25, 1.5)), 0.8)
    disp_med = np.array([_DISPATCH_MEDIAN_H.get(v, 1.0) for v in level])[cat]
    disp_h = acc_h + rng.lognormal(np.log(disp_med), 0.7)
    res_h = rng.lognormal(np.log(_RESOLVE_FRACTION * lim), _RESOLVE_SIGMA)
    res_h = np.maximum(res_h, disp_h + rng.uniform(0.1, 0.5, n))
    prog_h = disp_h + rng.uniform(0.05, 0.3, n) * (res_h - disp_h)
    close_h = res_h + rng.lognormal(np.log(20.0), 0.6)
    stall = rng.random(n) < 0.015
    res_h[stall] = np.inf
    close_h[stall] = np.inf
    # rejected / duplicate, decided at acceptance time
    p_dup = np.where(by_worker, 0.01, 0.05) + np.where(is_hot, 0.10, 0.0)
    p_rej = np.where(by_worker, 0.01, 0.05)
    u = rng.random(n)
    dup = u < p_dup
    rej = (~dup) & (u < p_dup + p_rej)
    decided = rep + (acc_h * _HOUR_NS).astype(np.int64)

    def stamp(h: np.ndarray) -> np.ndarray:
        finite = np.isfinite(h)
        t = rep + np.where(finite, np.rint(h * 3600), 0).astype(np.int64) * 10**9
        return np.where(finite & (t <= now_ns), t, _NAT)

    acc_t, disp_t, prog_t = stamp(acc_h), stamp(disp_h), stamp(prog_h)
    res_t, close_t = stamp(res_h), stamp(close_h)
    status = np.zeros(n, dtype=np.int64)  # index into _STATUSES
    for k, t in enumerate((acc_t, disp_t, prog_t, res_t, close_t), start=1):
        status[t != _NAT] = k
    out_of_flow = (dup | rej) & (decided <= now_ns)
    status[out_of_flow & rej] = 6
    status[out_of_flow & dup] = 7
    for t in (acc_t, disp_t, res_t):
        t[out_of_flow] = _NAT
    close_t[out_of_flow] = decided[out_of_flow]
    pending = (dup | rej) & ~out_of_flow  # decision still to come: only reported
    for t in (acc_t, disp_t, res_t, close_t):
        t[pending] = _NAT
    status[pending] = 0

    # ---- assemble, sorted by report time
    order = np.argsort(rep, kind="stable")
    desc = _descriptions(cat_codes, categories)  # [category, template, kind]
    tmpl_i = rng.integers(0, desc.shape[1], n)
    desc_i = (cat * desc.shape[1] + tmpl_i) * 2 + by_worker
    frame = pd.DataFrame(
        {
            "source_id": _source_ids(n),
            "category": _strings(cat_codes, cat[order]),
            "description": _strings(desc.ravel(), desc_i[order]),
            "lon": x[order],
            "lat": y[order],
            "reported_at": _utc(rep[order]),
            "reporter_kind": _strings(["resident", "worker"], by_worker[order].astype(np.int64)),
            "reporter_id": _strings(worker_ids, reporter[order]),
            "status": _strings(_STATUSES, status[order]),
            "accepted_at": _utc(acc_t[order]),
            "dispatched_at": _utc(disp_t[order]),
            "resolved_at": _utc(res_t[order]),
            "closed_at": _utc(close_t[order]),
            "grid_code": _strings(grid_codes, grid_idx[order]),
        }
    )
    frame.attrs["hotspots"] = hotspots.drop(columns=["category_index"]).to_dict("records")
    frame.attrs["now"] = pd.Timestamp(now_ns, tz="UTC")
    return frame


def plant_hotspots(
    buildings: gpd.GeoDataFrame, categories: pd.DataFrame, *, seed: int = 2025
) -> pd.DataFrame:
    """The planted hot spots of :func:`build_incidents` (same seed → same spots).

    Returns
    -------
    pandas.DataFrame
        ``hotspot_id``, ``lon``, ``lat`` (WGS84), ``category``, ``category_index`` (row in
        ``categories``), ``spread_m`` (Gaussian sd in metres), ``weight`` (share of the
        hot-spot incidents), ``grid_code`` of the centre building.
    """
    rng = np.random.default_rng([seed, 4242])
    codes = list(categories.index)
    share = categories["share"].to_numpy(dtype=float)
    gcode = buildings["grid_code"].astype(str)
    kind = buildings["kind"] if "kind" in buildings else pd.Series("urban", index=buildings.index)
    pop = buildings["population"].to_numpy(dtype=float)
    rows = []
    used: set[int] = set()
    for i, (district, want_kind, category, spread, weight) in enumerate(_HOTSPOTS):
        m = (gcode.str[:6] == district).to_numpy() & (kind == want_kind).to_numpy()
        if not m.any():
            m = (kind == want_kind).to_numpy()
        if not m.any():
            m = np.ones(len(pop), dtype=bool)
        cand = np.flatnonzero(m)
        cand = cand[np.argsort(-pop[cand], kind="stable")][: max(1, len(cand) // 5)]
        cand = np.array([c for c in cand if c not in used]) if len(cand) > 1 else cand
        if len(cand) == 0:
            continue
        b = int(rng.choice(cand))
        used.add(b)
        ci = codes.index(category) if category in codes else int(np.argmax(share))
        pt = buildings.geometry.values[b]
        rows.append((i + 1, pt.x, pt.y, codes[ci], ci, spread, weight, gcode.iat[b]))
    return pd.DataFrame(
        rows,
        columns=[
            "hotspot_id", "lon", "lat", "category", "category_index", "spread_m", "weight",
            "grid_code",
        ],
    )  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _strings(values, codes: np.ndarray) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """values[codes] as a pandas string array (codes < 0 → missing), built in Arrow."""
    codes = np.asarray(codes)
    mask = codes < 0
    idx = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    dictionary = pa.array([str(v) for v in values] or [""], type=pa.string())
    arr = pa.DictionaryArray.from_arrays(idx, dictionary).cast(pa.string())
    return _to_pandas_strings(arr)


def _source_ids(n: int) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """``demo-000001`` … (at least 6 digits)."""
    width = max(6, len(str(n)))
    digits = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width, "0")
    return _to_pandas_strings(pc.binary_join_element_wise("demo-", digits, ""))


def _to_pandas_strings(arr: pa.Array) -> pd.api.extensions.ExtensionArray | np.ndarray:
    try:  # pandas ≥ 2.3: the default "str" dtype, Arrow-backed, zero-copy
        return pd.array(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    except (TypeError, ValueError, ImportError):  # older pandas: object strings
        return np.asarray(arr.to_pylist(), dtype=object)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC")


def _day_weights(dates: pd.DatetimeIndex) -> np.ndarray:
    weekly = np.array([1.08, 1.05, 1.04, 1.03, 1.00, 0.80, 0.64])[dates.day_of_week]
    trend = 0.85 + 0.30 * np.arange(len(dates)) / max(len(dates) - 1, 1)
    holiday = np.ones(len(dates))
    for sf in _SPRING_FESTIVAL:
        d = (dates - pd.Timestamp(sf)).days.to_numpy()
        holiday[(d >= -2) & (d <= 6)] = 0.5
    md = dates.month * 100 + dates.day
    holiday[(md >= 1001) & (md <= 1007)] = np.minimum(holiday[(md >= 1001) & (md <= 1007)], 0.7)
    holiday[(md >= 501) & (md <= 505)] = np.minimum(holiday[(md >= 501) & (md <= 505)], 0.85)
    return weekly * trend * holiday


def _season(code: str, dates: pd.DatetimeIndex) -> np.ndarray:
    doy = dates.day_of_year.to_numpy().astype(float)

    def bump(centre: float, width: float) -> np.ndarray:
        d = np.abs(doy - centre)
        d = np.minimum(d, 365.0 - d)
        return np.exp(-0.5 * (d / width) ** 2)

    def wave(peak: float, amp: float) -> np.ndarray:
        return 1.0 + amp * np.cos(2 * np.pi * (doy - peak) / 365.0)

    if code == "sanitation":
        return wave(196, 0.45)
    if code == "drainage":
        return 0.3 + 2.6 * bump(170, 30) + 1.2 * bump(235, 25)
    if code == "greening":
        return 0.7 + 0.8 * bump(110, 40) + 0.6 * bump(235, 25)
    if code == "noise":
        return wave(200, 0.30)
    if code == "vendor":
        return wave(190, 0.20)
    if code == "safety_hazard":
        return 1.0 + 0.5 * bump(45, 12)  # fireworks and heating around the Spring Festival
    return np.ones(len(doy))


def _time_of_day(
    rng: np.random.Generator, by_worker: np.ndarray, cat: np.ndarray, cat_codes: np.ndarray
) -> np.ndarray:
    """Local hour of day (float, 0-24)."""
    n = len(cat)
    u = rng.random(n)
    z = rng.normal(0, 1, n)
    worker = np.where(u < 0.55, 9.8 + 1.3 * z, 15.6 + 1.3 * z).clip(7.5, 19.0)
    resident = np.where(u < 0.3, 10 + 2 * z, np.where(u < 0.6, 15 + 2 * z, 20.5 + 1.8 * z))
    noise_code = np.flatnonzero(cat_codes == "noise")
    if len(noise_code):
        night = (cat == noise_code[0]) & (u < 0.6)
        resident = np.where(night, 22.0 + 1.5 * z, resident)
    return np.mod(np.where(by_worker, worker, resident), 24.0).clip(0, 23.9997)


def _draw_buildings(
    rng: np.random.Generator,
    rows: np.ndarray,
    cat: np.ndarray,
    cat_codes: np.ndarray,
    pop: np.ndarray,
    kind: np.ndarray,
) -> np.ndarray:
    """A building per row, by population × the category's urban/town/rural preference."""
    out = np.empty(len(rows), dtype=np.int64)
    for c in np.unique(cat):
        m = np.flatnonzero(cat == c)
        pref = np.asarray(_KIND_PREF.get(cat_codes[c], (1.0, 1.0, 1.0)))
        cdf = np.cumsum(pop * pref[kind])
        out[m] = np.searchsorted(cdf, rng.random(len(m)) * cdf[-1], side="right")
    return np.minimum(out, len(pop) - 1)


def _roads(bx: np.ndarray, by: np.ndarray, pop: np.ndarray, gcode: np.ndarray) -> np.ndarray:
    """Busy road segments [x0, y0, x1, y1, weight]: town centre → district seat → city.

    A street's centre is the population-weighted centre of its community 001 (the one
    nearest its seat); a district's seat is the centre of its street 001.
    """
    df = pd.DataFrame({"x": bx * pop, "y": by * pop, "p": pop, "g": gcode})
    df["community"] = df["g"].str[:12]
    df["street"] = df["g"].str[:9]
    street_pop = df.groupby("street")["p"].sum()
    first = df[df["community"].str[9:12] == "001"].groupby("street")[["x", "y", "p"]].sum()
    first = first[first["p"] > 0]
    if len(first) < 2:
        return np.empty((0, 5))
    cx = first["x"] / first["p"]
    cy = first["y"] / first["p"]
    district = first.index.str[:6]
    seat = first.index.str[6:9] == "001"
    seats = pd.DataFrame({"x": cx[seat].to_numpy(), "y": cy[seat].to_numpy()},
                         index=district[seat])  # fmt: skip
    dist_pop = street_pop.groupby(street_pop.index.str[:6]).sum()
    segs = []
    for s, d, is_seat in zip(first.index, district, seat, strict=True):
        if not is_seat and d in seats.index:
            segs.append((cx[s], cy[s], seats.at[d, "x"], seats.at[d, "y"], street_pop[s]))
    if len(seats) > 1:
        city = dist_pop.reindex(seats.index).idxmax()
        for d in seats.index:
            if d != city:
                segs.append((seats.at[d, "x"], seats.at[d, "y"], seats.at[city, "x"],
                             seats.at[city, "y"], 0.5 * dist_pop[d]))  # fmt: skip
    return np.asarray(segs, dtype=float).reshape(-1, 5)


def _locate(grid_geoms: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Grid index containing each point, -1 outside every grid (grids prepared)."""
    tree = shapely.STRtree(grid_geoms)
    pi, gi = tree.query(shapely.points(x, y))
    inside = shapely.contains_xy(grid_geoms[gi], x[pi], y[pi])
    out = np.full(len(x), -1, dtype=np.int64)
    out[pi[inside]] = gi[inside]
    return out


def _descriptions(cat_codes: np.ndarray, categories: pd.DataFrame) -> np.ndarray:
    """Array [category, template, reporter kind (0 resident, 1 worker)] of texts."""
    k = max(len(t) for t in _TEMPLATES.values())
    out = np.empty((len(cat_codes), k, 2), dtype=object)
    for i, c in enumerate(cat_codes):
        base = _TEMPLATES.get(c) or (f"{categories.loc[c, 'name_zh']}问题",)
        for j in range(k):
            text = base[j % len(base)]
            out[i, j, 0] = text + _SUFFIX["resident"]
            out[i, j, 1] = text + _SUFFIX["worker"]
    return out
