"""The deterministic Yulin demo: hierarchy, buildings, catalogue, workers, incidents."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geogrid.core.catalogue import DEFAULT_CATEGORIES_PATH, category_codes, load_categories
from geogrid.demo import CITY, CITY_FILE, build_demo, build_incidents, build_workers, plant_hotspots
from geogrid.demo.boundaries import DEFAULT_COUNTIES_PATH, LEVELS, METRIC_CRS, UNIT_COLUMNS
from geogrid.errors import FileInputError, InvalidInput
from geogrid.settings import get_settings, load_city

M2_PER_DEG2 = 111_320.0 * np.cos(np.radians(22.5)) * 110_574.0  # rough, for thresholds
PARENT = {"street": "district", "community": "street", "grid": "community"}
STATUSES = {
    "reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "rejected",
    "duplicate",
}  # fmt: skip


@pytest.fixture(scope="module")
def city():
    return build_demo()


@pytest.fixture(scope="module")
def units(city):
    return city.units


@pytest.fixture(scope="module")
def people(units):
    return build_workers(units["grid"], seed=2016)


@pytest.fixture(scope="module")
def cats():
    return load_categories()


@pytest.fixture(scope="module")
def incidents(city, people, cats):
    return build_incidents(city.units["grid"], city.buildings, people[0], cats, n=120_000, seed=7)


# --------------------------------------------------------------------------- hierarchy


def test_counts(units, city):
    assert len(units["district"]) == 7
    assert len(units["grid"]) == 8798
    assert 100 <= len(units["street"]) <= 120
    assert 1500 <= len(units["community"]) <= 1700
    assert set(units["district"]["code"]) == {
        "450902", "450903", "450921", "450922", "450923", "450924", "450981",
    }  # fmt: skip
    assert 250_000 <= len(city.buildings) <= 400_000
    hh = units["district"]["households"].sum()
    pop = units["district"]["population"].sum()
    assert 1.4e6 <= hh <= 1.9e6
    assert 5.3e6 <= pop <= 6.3e6


def test_frame_schema(units):
    for level in LEVELS:
        gdf = units[level]
        assert list(gdf.columns) == UNIT_COLUMNS
        assert gdf.crs.to_epsg() == 4326
        assert (gdf["level"] == level).all()
        assert set(gdf.geom_type) == {"MultiPolygon"}
        assert gdf["code"].is_unique
        assert gdf.geometry.is_valid.all()
        assert (gdf["area_m2"] > 0).all()
        width = {"district": 6, "street": 9, "community": 12, "grid": 15}[level]
        assert gdf["code"].str.fullmatch(rf"\d{{{width}}}").all()
    assert units["district"]["parent_code"].isna().all()


def test_parent_chain_complete(units):
    for level, parent in PARENT.items():
        child = units[level]
        assert child["parent_code"].isin(set(units[parent]["code"])).all()
        assert (child["code"].str[:-3] == child["parent_code"]).all()
    # every parent has at least one child
    for level, parent in PARENT.items():
        assert set(units[parent]["code"]) == set(units[level]["parent_code"])
    g = units["grid"]["code"]
    assert g.str[:6].isin(set(units["district"]["code"])).all()


@pytest.mark.parametrize("level", ["street", "community", "grid"])
def test_children_partition_parent(units, level):
    child, parent = units[level], units[PARENT[level]].set_index("code")
    worst = 0.0
    for code, grp in child.groupby("parent_code"):
        union = shapely.coverage_union_all(np.asarray(grp.geometry.values))
        target = parent.geometry[code]
        diff = shapely.area(shapely.symmetric_difference(union, target)) / target.area
        worst = max(worst, diff)
    assert worst < 1e-4
    # areas add up within 0.01%
    sums = child.groupby("parent_code")["area_m2"].sum()
    rel = (sums / parent["area_m2"].reindex(sums.index) - 1).abs()
    assert rel.max() < 1e-4


def test_grids_form_exact_coverage(units):
    geoms = np.asarray(units["grid"].geometry.values)
    assert shapely.coverage_is_valid(geoms)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    if len(i):
        overlap_m2 = shapely.area(shapely.intersection(geoms[i], geoms[j])) * M2_PER_DEG2
        assert overlap_m2.max() < 1.0


def test_no_fragments(units):
    for level in ("street", "community", "grid"):
        geoms = np.asarray(units[level].geometry.values)
        parts = shapely.get_parts(geoms)
        assert (shapely.area(parts) * M2_PER_DEG2).min() >= 10.0
        assert (shapely.get_num_geometries(geoms) == 1).mean() > 0.99


def test_households_roll_up(units, city):
    b = city.buildings
    grid = units["grid"].set_index("code")
    per_grid = b.groupby("grid_code")[["households", "population"]].sum()
    assert set(per_grid.index) == set(grid.index)  # every grid has a building
    pd.testing.assert_frame_equal(
        per_grid.sort_index(), grid[["households", "population"]].sort_index(),
        check_names=False,
    )  # fmt: skip
    for level, parent in PARENT.items():
        sums = units[level].groupby("parent_code")[["households", "population"]].sum()
        expect = units[parent].set_index("code")[["households", "population"]]
        assert (sums.sort_index().to_numpy() == expect.sort_index().to_numpy()).all()
    assert (units["grid"]["households"] >= 1).all()


def test_buildings_inside_their_grid(city, units):
    b = city.buildings.sample(5000, random_state=1)
    grid = units["grid"].set_index("code").geometry
    geoms = np.asarray(grid.reindex(b["grid_code"]).values)
    assert shapely.intersects_xy(geoms, b.geometry.x.to_numpy(), b.geometry.y.to_numpy()).all()
    assert list(city.buildings.columns) == [
        "building_id", "households", "population", "grid_code", "kind", "geometry",
    ]  # fmt: skip
    assert city.buildings["building_id"].is_unique


def test_districts_are_the_real_polygons(units):
    real = gpd.read_file(DEFAULT_COUNTIES_PATH)
    real["adcode"] = real["adcode"].astype(str)
    real = real.set_index("adcode")
    d = units["district"].set_index("code")
    for code, geom in d.geometry.items():
        ref = real.geometry[code]
        assert abs(geom.area / ref.area - 1) < 1e-4
        assert shapely.area(shapely.symmetric_difference(geom, ref)) / ref.area < 1e-4
        assert d.at[code, "name"] == real.at[code, "name"]


def test_urban_grids_sized_by_households(units):
    grid, comm = units["grid"], units["community"]
    urban_comm = set(comm.loc[comm["name"].str.endswith("社区"), "code"])
    urban = grid["parent_code"].isin(urban_comm)
    assert 200 <= grid.loc[urban, "households"].median() <= 400
    assert grid.loc[~urban, "area_m2"].median() > 3 * grid.loc[urban, "area_m2"].median()
    # denser near the seats: Yuzhou's grids are smaller than Bobai's
    by_district = grid.groupby(grid["code"].str[:6])["area_m2"].median()
    assert by_district["450902"] < by_district["450923"]


def test_names(units):
    streets = units["street"]
    yz = set(streets.loc[streets["parent_code"] == "450902", "name"])
    assert {"玉城街道", "南江街道", "城西街道", "城北街道", "名山街道", "大塘镇"} <= yz
    grid = units["grid"]
    assert grid["name"].str.fullmatch(r".+(社区|村)第\d+网格").all()
    first = grid.iloc[0]
    assert first["name"] == "江滨社区第1网格"
    comm = units["community"]
    assert not comm.duplicated(["parent_code", "name"]).any()


def test_deterministic_and_seeded():
    one = gpd.read_file(DEFAULT_COUNTIES_PATH).iloc[[1]]  # 福绵区
    a = build_demo(one, seed=5, n_grids=300).units["grid"]
    b = build_demo(one, seed=5, n_grids=300).units["grid"]
    c = build_demo(one, seed=6, n_grids=300).units["grid"]
    assert len(a) == 300
    assert a["code"].tolist() == b["code"].tolist()
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()
    assert not (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(c.geometry.values)).all()


def test_bad_arguments():
    with pytest.raises(InvalidInput, match="seed"):
        build_demo(seed=-1)
    one = gpd.read_file(DEFAULT_COUNTIES_PATH).iloc[[1]]
    with pytest.raises(InvalidInput, match="n_grids"):
        build_demo(one, n_grids=3, n_communities=10)
    with pytest.raises(InvalidInput, match="districts"):
        build_demo(one.rename(columns={"adcode": "x"}))


# --------------------------------------------------------------------------- catalogue


def test_catalogue_default(cats):
    assert list(cats.index[:3]) == ["sanitation", "illegal_construction", "road_occupation"]
    assert len(cats) == 12
    assert cats.index.is_unique
    assert (cats["limit_hours"] > 0).all()
    assert set(cats["escalate_level"]) <= set(LEVELS)
    assert abs(cats["share"].sum() - 1) < 1e-9
    assert category_codes() == list(cats.index)


def test_catalogue_env_override(tmp_path, monkeypatch):
    p = tmp_path / "cats.csv"
    p.write_text(
        "code,name_zh,name_en,limit_hours,effort,escalate_level,share\n"
        "pothole,路面坑洼,Pothole,48,1.2,street,0.5\n"
        "other,其他,Other,72,1,community,0.5\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("GEOGRID_CATEGORIES", str(p))
    city = get_settings().city  # the environment reaches the city's settings, not the core
    assert category_codes(city.categories) == ["pothole", "other"]
    assert load_categories(DEFAULT_CATEGORIES_PATH).shape[0] == 12  # explicit path wins


def test_catalogue_validation(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(
        "code,name_zh,name_en,limit_hours,effort,escalate_level,share\n"
        "a,甲,A,24,1,grid,0.5\n"
        "a,乙,B,-3,1,city,0.5\n",
        encoding="utf-8",
    )
    with pytest.raises(FileInputError, match="duplicate code") as err:
        load_categories(p)
    fields = {e.field for e in err.value.errors}
    assert fields == {"code", "limit_hours", "escalate_level"}
    q = tmp_path / "short.csv"
    q.write_text("code,name_zh\nx,甲\n", encoding="utf-8")
    with pytest.raises(FileInputError, match="missing column"):
        load_categories(q)
    with pytest.raises(FileInputError, match="cannot read"):
        load_categories(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- people


def test_workers(people, units):
    workers, staff = people
    codes = workers["grid_codes"].explode()
    assert codes.is_unique and set(codes) == set(units["grid"]["code"])
    assert workers["worker_id"].is_unique
    assert (workers["role"] == "worker").all()
    pairs = workers[workers["grid_codes"].str.len() == 2]
    assert 0.02 <= len(pairs) / len(workers) <= 0.04
    geom = units["grid"].set_index("code").geometry
    for a, b in pairs["grid_codes"].head(50):
        assert a[:12] == b[:12]
        assert shapely.length(shapely.intersection(geom[a], geom[b])) > 0
    assert workers["name"].str.len().between(2, 3).all()
    roles = staff["role"].value_counts()
    assert roles["community_admin"] == len(units["community"])
    assert roles["street_admin"] == len(units["street"])
    assert roles["district_admin"] == 7
    assert staff["account_id"].is_unique
    again, _ = build_workers(units["grid"], seed=2016)
    pd.testing.assert_frame_equal(workers, again)


# --------------------------------------------------------------------------- incidents


def test_incident_columns(incidents):
    assert list(incidents.columns) == [
        "source_id", "category", "description", "lon", "lat", "reported_at", "reporter_kind",
        "reporter_id", "status", "accepted_at", "dispatched_at", "resolved_at", "closed_at",
        "grid_code",
    ]  # fmt: skip
    assert len(incidents) == 120_000
    assert incidents["source_id"].is_unique
    assert incidents["source_id"].iloc[0] == "demo-000001"
    assert str(incidents["reported_at"].dt.tz) == "UTC"
    assert incidents["reported_at"].is_monotonic_increasing
    assert set(incidents["status"]) <= STATUSES
    assert incidents["description"].str.len().gt(4).all()


def test_incident_proportions(incidents, cats):
    share = cats["share"] / cats["share"].sum()
    got = incidents["category"].value_counts(normalize=True).reindex(share.index)
    assert (got - share).abs().max() < 0.015


def test_incident_rhythms(incidents):
    local = incidents["reported_at"].dt.tz_convert("Asia/Shanghai")
    by_day = local.dt.day_of_week.value_counts()
    assert by_day[6] == by_day.min()
    assert by_day[6] < 0.8 * by_day[[0, 1, 2, 3, 4]].mean()
    month = local.dt.month
    share = pd.crosstab(month, incidents["category"], normalize="index")
    assert share.at[7, "sanitation"] > 1.3 * share.at[1, "sanitation"]
    assert share.at[6, "drainage"] > 3 * share.at[1, "drainage"]
    hours = local.dt.hour.value_counts()
    assert hours[[9, 10, 15]].min() > 5 * hours[[2, 3, 4]].max()


def test_incident_lifecycle(incidents, cats):
    df = incidents
    for a, b in [
        ("reported_at", "accepted_at"), ("accepted_at", "dispatched_at"),
        ("dispatched_at", "resolved_at"), ("resolved_at", "closed_at"),
    ]:  # fmt: skip
        both = df[a].notna() & df[b].notna()
        assert (df.loc[both, b] >= df.loc[both, a]).all()
    now = df.attrs["now"]
    for c in ("accepted_at", "dispatched_at", "resolved_at", "closed_at"):
        assert (df[c].isna() | (df[c] <= now)).all()
    closed = df["status"] == "closed"
    assert df.loc[closed, "closed_at"].notna().all()
    out = df["status"].isin(["rejected", "duplicate"])
    assert df.loc[out, "closed_at"].notna().all() and df.loc[out, "resolved_at"].isna().all()
    assert 0.02 < out.mean() < 0.12
    assert df.loc[df["status"] == "reported", "accepted_at"].isna().all()
    # ≈8% resolved after the category's limit
    res = df["resolved_at"].notna()
    hours = (df.loc[res, "resolved_at"] - df.loc[res, "reported_at"]).dt.total_seconds() / 3600
    overdue = (hours > df.loc[res, "category"].map(cats["limit_hours"])).mean()
    assert 0.05 < overdue < 0.12
    # old incidents are done, recent ones are still open
    old = df["reported_at"] < now - pd.Timedelta(days=60)
    recent = df["reported_at"] > now - pd.Timedelta(days=1)
    open_ = ~df["status"].isin(["resolved", "closed", "rejected", "duplicate"])
    assert open_[old].mean() < 0.03
    assert open_[recent].mean() > 0.4


def test_incident_places(incidents, units, people):
    df = incidents.sample(20_000, random_state=3)
    grid = units["grid"].set_index("code").geometry
    geoms = np.asarray(grid.reindex(df["grid_code"]).values)
    assert shapely.intersects_xy(geoms, df["lon"].to_numpy(), df["lat"].to_numpy()).all()
    # reports cluster where people live: Yuzhou (dense) has more per km² than Bobai
    area = units["district"].set_index("code")["area_m2"] / 1e6
    per_km2 = incidents["grid_code"].str[:6].value_counts() / area
    assert per_km2["450902"] > 3 * per_km2["450923"]
    # worker reports carry the grid's worker
    workers = people[0].explode("grid_codes").set_index("grid_codes")["worker_id"]
    w = df[df["reporter_kind"] == "worker"]
    assert (w["reporter_id"] == w["grid_code"].map(workers)).all()
    assert df.loc[df["reporter_kind"] == "resident", "reporter_id"].isna().all()
    assert 0.5 < (df["reporter_kind"] == "worker").mean() < 0.8


def test_hotspots_grow(incidents, city, cats):
    spots = plant_hotspots(city.buildings, cats, seed=7)
    assert 3 <= len(spots) <= 5
    assert [h["hotspot_id"] for h in incidents.attrs["hotspots"]] == list(spots["hotspot_id"])
    now = incidents.attrs["now"]
    t = incidents["reported_at"]
    early = t < now - pd.Timedelta(days=365 - 90)
    late = t >= now - pd.Timedelta(days=90)
    kx = 111_320.0 * np.cos(np.radians(22.6))
    for s in spots.itertuples():
        d = np.hypot((incidents["lon"] - s.lon) * kx, (incidents["lat"] - s.lat) * 110_574.0)
        near = (d < 250) & (incidents["category"] == s.category)
        assert near[late].sum() > 2 * max(near[early].sum(), 1)
        assert near.sum() > 100


def test_incidents_scale_and_determinism(city, people, cats):
    g, b = city.units["grid"], city.buildings
    small = build_incidents(g, b, people[0], cats, n=1000, seed=11)
    again = build_incidents(g, b, people[0], cats, n=1000, seed=11)
    other = build_incidents(g, b, people[0], cats, n=1000, seed=12)
    pd.testing.assert_frame_equal(small, again)
    assert not small["lon"].equals(other["lon"])
    big = build_incidents(g, b, None, cats, n=20_000, seed=11, start="2026-03-01", days=30)
    assert len(small) == 1000 and len(big) == 20_000
    assert big["reporter_id"].isna().all()
    local = big["reported_at"].dt.tz_convert("Asia/Shanghai")
    assert local.min() >= pd.Timestamp("2026-03-01", tz="Asia/Shanghai")
    assert local.max() < pd.Timestamp("2026-03-31", tz="Asia/Shanghai")
    assert len(build_incidents(g, b, None, cats, n=0)) == 0
    with pytest.raises(InvalidInput, match="days"):
        build_incidents(g, b, None, cats, n=10, days=0)


def test_incidents_custom_catalogue(city, tmp_path):
    p = tmp_path / "cats.csv"
    p.write_text(
        "code,name_zh,name_en,limit_hours,effort,escalate_level,share\n"
        "pothole,路面坑洼,Pothole,48,1.2,street,0.7\n"
        "sanitation,环境卫生,Sanitation,24,1,grid,0.3\n",
        encoding="utf-8",
    )
    cats = load_categories(p)
    df = build_incidents(city.units["grid"], city.buildings, None, cats, n=3000, seed=1)
    assert set(df["category"]) == {"pothole", "sanitation"}
    assert df.loc[df["category"] == "pothole", "description"].str.startswith("路面坑洼").all()


def test_the_demo_city_is_configured_by_its_file() -> None:
    assert CITY_FILE.name == "yulin.toml" and load_city(CITY_FILE) == CITY
    assert (CITY.name_zh, CITY.name_en, CITY.code) == ("玉林市", "Yulin", "450900")
    assert (CITY.timezone, CITY.metric_crs) == ("Asia/Shanghai", METRIC_CRS)
    assert METRIC_CRS == "EPSG:4546"  # CGCS2000 3-degree Gauss-Kruger CM 111E
