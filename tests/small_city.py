"""A tiny city in real Yulin coordinates, in its own PostGIS database.

One district (450902 玉州区), one street, one community, and four ~500 m grids in a 2×2
partition around lon 110.15, lat 22.63 (EPSG:4326); four incident categories; accounts for
every role with their tokens.

Each test module builds its own city (``with small_city.build() as city``) in a fresh
database created from the admin URL of ``tests/conftest.py``, so it neither depends on
nor disturbs the shared session database (a colleague's fixture loads the full Yulin demo
there).

Grid layout (codes 450902001001 + 001..004)::

    003 | 004      lat 22.63 + DY
    ----+----      lat 22.63
    001 | 002      lat 22.63 - DY
     lon 110.15 ± DX
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import geopandas as gpd
import httpx
from conftest import create_database, drop_database, serving
from shapely import MultiPolygon, box
from sqlalchemy import Engine, create_engine, text

from geogrid.core.crs import area_m2
from geogrid.services.accounts import add_user
from geogrid.services.boundaries import save_hierarchy

CX, CY = 110.15, 22.63
DX = 500 / 102_750  # 500 m in degrees of longitude at 22.63°N
DY = 500 / 110_574  # 500 m in degrees of latitude
DISTRICT, STREET, COMMUNITY = "450902", "450902001", "450902001001"
GRIDS = [f"{COMMUNITY}{i:03d}" for i in (1, 2, 3, 4)]
#: a WGS84 point at the centre of each grid
CENTRES = {
    GRIDS[0]: (CX - DX / 2, CY - DY / 2),
    GRIDS[1]: (CX + DX / 2, CY - DY / 2),
    GRIDS[2]: (CX - DX / 2, CY + DY / 2),
    GRIDS[3]: (CX + DX / 2, CY + DY / 2),
}
OUTSIDE = (110.20, 22.70)  # ~7 km away: outside every unit

CATEGORIES = [
    # code, name_zh, name_en, limit_hours, effort, escalate_level
    ("garbage", "垃圾乱堆乱放", "Garbage dumped", 24.0, 1.0, "grid"),
    ("small_ads", "乱贴小广告", "Small ads posted", 48.0, 0.5, "grid"),
    ("illegal_construction", "违章搭建", "Illegal construction", 72.0, 3.0, "street"),
    ("dispute", "邻里纠纷", "Neighbour dispute", 4.0, 2.0, "grid"),
]

ACCOUNTS = [
    # key, name, role, units
    ("w1", "李梅", "worker", [GRIDS[0]]),
    ("w2", "黄强", "worker", [GRIDS[1]]),
    ("w3", "陈芳", "worker", [GRIDS[2], GRIDS[3]]),
    ("community", "江滨社区管理员", "community_admin", [COMMUNITY]),
    ("street", "名山街道管理员", "street_admin", [STREET]),
    ("district", "玉州区管理员", "district_admin", [DISTRICT]),
    ("leader", "领导", "leader", []),
    ("analyst", "分析员", "analyst", []),
    ("planner", "规划员", "planner", []),
    ("admin", "系统管理员", "admin", []),
]


@dataclass
class City:
    url: str
    engine: Engine
    version_id: int
    accounts: dict = field(default_factory=dict)  # key → Account
    tokens: dict = field(default_factory=dict)  # key → plain token

    def auth(self, key: str) -> dict:
        return {"Authorization": f"Bearer {self.tokens[key]}"}


def _square(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    return MultiPolygon([box(x0, y0, x1, y1)])


def layers() -> dict[str, gpd.GeoDataFrame]:
    """The four unit layers (unit GeoDataFrames in EPSG:4326)."""
    x = [CX - DX, CX, CX + DX]
    y = [CY - DY, CY, CY + DY]
    whole = _square(x[0], y[0], x[2], y[2])
    grid_geoms = [
        _square(x[0], y[0], x[1], y[1]),
        _square(x[1], y[0], x[2], y[1]),
        _square(x[0], y[1], x[1], y[2]),
        _square(x[1], y[1], x[2], y[2]),
    ]
    spec = {
        "district": [(DISTRICT, "玉州区", None, whole)],
        "street": [(STREET, "名山街道", DISTRICT, whole)],
        "community": [(COMMUNITY, "江滨社区", STREET, whole)],
        "grid": [
            (g, f"江滨社区第{i + 1}网格", COMMUNITY, geom)
            for i, (g, geom) in enumerate(zip(GRIDS, grid_geoms, strict=True))
        ],
    }
    out = {}
    for level, rows in spec.items():
        gdf = gpd.GeoDataFrame(
            {
                "code": [r[0] for r in rows],
                "name": [r[1] for r in rows],
                "level": level,
                "parent_code": [r[2] for r in rows],
                "population": 1000 * len(rows),
                "households": 400 * len(rows),
            },
            geometry=[r[3] for r in rows],
            crs="EPSG:4326",
        )
        gdf["area_m2"] = area_m2(gdf.geometry).to_numpy()
        out[level] = gdf
    return out


def populate(engine: Engine, url: str, *, source: str = "tests/small_city", ref: str = "T") -> City:
    """Write the city into the migrated database of ``engine`` (at ``url``): its units,
    categories and accounts (``ref``: the prefix of the accounts' references)."""
    vid = save_hierarchy(engine, layers(), label="small city", source=source)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO category (code, name_zh, name_en, limit_hours, effort, "
                "escalate_level) VALUES (:c, :z, :e, :l, :f, :x)"
            ),
            [{"c": c, "z": z, "e": e, "l": lh, "f": f, "x": x} for c, z, e, lh, f, x in CATEGORIES],
        )
    city = City(url, engine, vid)
    for key, nm, role, units in ACCOUNTS:
        acc, token = add_user(engine, nm, role, units=units, ref=f"{ref}-{key}")
        city.accounts[key] = acc
        city.tokens[key] = token
    return city


@contextmanager
def build() -> Iterator[City]:
    """Create the database, the city, its categories and accounts; drop it afterwards."""
    url = create_database("geogrid_city")
    engine = create_engine(url)
    try:
        yield populate(engine, url)
    finally:
        engine.dispose()
        drop_database(url)


def serve(city: City) -> AbstractContextManager[httpx.Client]:
    """A real uvicorn server on the city's database and an httpx client bound to it."""
    return serving(city.url)
