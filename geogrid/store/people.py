"""Bulk storage of demo people (worker and staff accounts) and base records (buildings)."""

from __future__ import annotations

import io

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.core.geometry import points_ewkb_hex

__all__ = ["copy_buildings", "insert_accounts"]


def copy_buildings(conn: Connection, buildings: gpd.GeoDataFrame, source: str) -> int:
    """COPY building points (households, population; EPSG:4326)."""
    df = pd.DataFrame(
        {
            "households": buildings["households"].astype("int64").to_numpy(),
            "population": buildings["population"].astype("int64").to_numpy(),
            "source": source,
            "geom": points_ewkb_hex(
                buildings.geometry.x.to_numpy(), buildings.geometry.y.to_numpy()
            ),
        }
    )
    buf = io.StringIO()
    df.to_csv(buf, sep="\t", header=False, index=False)
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled psycopg connection always has one
        raise RuntimeError("COPY needs a psycopg connection")
    with raw.cursor() as cur:
        with cur.copy("COPY building (households, population, source, geom) FROM STDIN") as cp:
            cp.write(buf.getvalue())
    return len(df)


def insert_accounts(conn: Connection, accounts: pd.DataFrame) -> dict[str, int]:
    """Insert accounts without tokens (``ref``, ``name``, ``role``, ``units`` list) and their
    units; returns ref → account id. Tokens are issued later with ``geogrid users``."""
    if len(accounts) == 0:
        return {}
    rows = conn.execute(
        text(
            "INSERT INTO account (ref, name, role) SELECT * FROM "
            "unnest(CAST(:refs AS text[]), CAST(:names AS text[]), CAST(:roles AS text[])) "
            "RETURNING id, ref"
        ),
        {
            "refs": accounts["ref"].astype(str).tolist(),
            "names": accounts["name"].astype(str).tolist(),
            "roles": accounts["role"].astype(str).tolist(),
        },
    ).all()
    ids = {ref: int(i) for i, ref in rows}
    pairs = accounts[["ref", "units"]].explode("units").dropna()
    conn.execute(
        text(
            "INSERT INTO account_unit (account_id, unit_code) SELECT * FROM "
            "unnest(CAST(:ids AS int[]), CAST(:codes AS text[])) ON CONFLICT DO NOTHING"
        ),
        {"ids": [ids[r] for r in pairs["ref"]], "codes": pairs["units"].astype(str).tolist()},
    )
    # statistics now, not when autovacuum gets to it (or never, where it is off): without
    # them the planner scans every account for each report's assignee (~30 ms per report)
    conn.execute(text("ANALYZE account"))
    conn.execute(text("ANALYZE account_unit"))
    return ids
