"""Plans in PostGIS, SQL only: plan and edit rows, and the writes of a publish.

A plan (table ``plan``) is a draft redraw of the grids of some communities, based on the
published boundary version at creation (``base_version_id``). Its edits are rows of
``plan_edit`` (``seq``, ``kind``, ``params`` JSON, ``undone``). What a plan *is* (the base
grids with the active edits replayed), undo/redo, the impact preview and publishing are
workflows in :mod:`geogrid.services.plans`; this module only reads and writes rows, inside
the caller's connection and transaction.

Coordinates are WGS84 (EPSG:4326, lon/lat degrees).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from geogrid.core.lifecycle import DONE_STATUSES
from geogrid.errors import NotFound

__all__ = [
    "PLAN_COLUMNS",
    "EDIT_COLUMNS",
    "community_codes",
    "insert_plan",
    "plan_row",
    "plan_rows",
    "edit_rows",
    "drop_undone_edits",
    "insert_edit",
    "set_edit_undone",
    "touch_plan",
    "mark_published",
    "delete_plan",
    "window_incidents",
    "buildings_in_bbox",
    "grid_workers",
    "load_reference",
    "lock_publishing",
    "communities_snapshot",
    "communities_with_street",
    "community_parents",
    "incident_points",
    "reattribute_incidents",
    "move_worker",
]

#: columns of a plan row, in order
PLAN_COLUMNS = (
    "id",
    "name",
    "author",
    "base_version_id",
    "community_codes",
    "status",
    "published_version_id",
    "created_at",
    "updated_at",
)
#: columns of an edit row, in order
EDIT_COLUMNS = ("id", "seq", "kind", "params", "undone", "author", "created_at")


# --------------------------------------------------------------------------- plans


def community_codes(conn: Connection, version_id: int, codes: Sequence[str]) -> set[str]:
    """The codes of ``codes`` that are communities of boundary version ``version_id``."""
    return set(
        conn.execute(
            text(
                "SELECT code FROM unit WHERE version_id = :v AND level = 'community' "
                "AND code = ANY(:c)"
            ),
            {"v": int(version_id), "c": list(codes)},
        ).scalars()
    )


def insert_plan(
    conn: Connection,
    name: str,
    author: str | None,
    base_version_id: int,
    communities: Sequence[str],
) -> int:
    """Insert a draft plan row; returns its id."""
    pid = conn.execute(
        text(
            "INSERT INTO plan (name, author, base_version_id, community_codes) "
            "VALUES (:n, :a, :v, :c) RETURNING id"
        ),
        {"n": name, "a": author, "v": int(base_version_id), "c": list(communities)},
    ).scalar_one()
    return int(pid)


def plan_row(conn: Connection, plan_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The row of plan ``plan_id`` (``FOR UPDATE`` with ``lock``).

    Raises
    ------
    NotFound  there is no such plan
    """
    sql = f"SELECT {', '.join(PLAN_COLUMNS)} FROM plan WHERE id = :i" + (
        " FOR UPDATE" if lock else ""
    )
    row = conn.execute(text(sql), {"i": int(plan_id)}).mappings().one_or_none()
    if row is None:
        raise NotFound(f"plan {plan_id} does not exist")
    return dict(row)


def plan_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every plan row (id order) with ``edits``, its number of active edits."""
    cols = ", ".join(f"p.{c}" for c in PLAN_COLUMNS)
    rows = conn.execute(
        text(
            f"SELECT {cols}, count(e.id) FILTER (WHERE NOT e.undone) AS edits "
            "FROM plan p LEFT JOIN plan_edit e ON e.plan_id = p.id GROUP BY p.id ORDER BY p.id"
        )
    ).mappings()
    return [dict(r) for r in rows]


def edit_rows(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The edit rows of a plan, in ``seq`` order (undone ones included)."""
    rows = conn.execute(
        text(f"SELECT {', '.join(EDIT_COLUMNS)} FROM plan_edit WHERE plan_id = :p ORDER BY seq"),
        {"p": int(plan_id)},
    ).mappings()
    return [dict(r) for r in rows]


def drop_undone_edits(conn: Connection, plan_id: int) -> None:
    """Delete the undone edits of a plan (a new edit empties the redo stack)."""
    conn.execute(text("DELETE FROM plan_edit WHERE plan_id = :p AND undone"), {"p": int(plan_id)})


def insert_edit(
    conn: Connection, plan_id: int, seq: int, kind: str, params_json: str, author: str | None
) -> int:
    """Insert an edit row (``params_json``: the parameters as a JSON text); returns its id."""
    eid = conn.execute(
        text(
            "INSERT INTO plan_edit (plan_id, seq, kind, params, author) VALUES "
            "(:p, :s, :k, CAST(:params AS jsonb), :a) RETURNING id"
        ),
        {"p": int(plan_id), "s": int(seq), "k": kind, "params": params_json, "a": author},
    ).scalar_one()
    return int(eid)


def set_edit_undone(conn: Connection, edit_id: int, undone: bool) -> None:
    """Mark an edit undone (or active again)."""
    conn.execute(
        text("UPDATE plan_edit SET undone = :u WHERE id = :i"),
        {"u": bool(undone), "i": int(edit_id)},
    )


def touch_plan(conn: Connection, plan_id: int) -> None:
    """Set the plan's ``updated_at`` to now."""
    conn.execute(text("UPDATE plan SET updated_at = now() WHERE id = :p"), {"p": int(plan_id)})


def mark_published(conn: Connection, plan_id: int, version_id: int) -> None:
    """Mark a plan published as boundary version ``version_id``."""
    conn.execute(
        text(
            "UPDATE plan SET status = 'published', published_version_id = :v, "
            "updated_at = now() WHERE id = :p"
        ),
        {"v": int(version_id), "p": int(plan_id)},
    )


def delete_plan(conn: Connection, plan_id: int) -> None:
    """Delete a plan and its edits."""
    conn.execute(text("DELETE FROM plan_edit WHERE plan_id = :p"), {"p": int(plan_id)})
    conn.execute(text("DELETE FROM plan WHERE id = :p"), {"p": int(plan_id)})


# --------------------------------------------------------------------------- impact inputs


def window_incidents(
    conn: Connection, grid_codes: Sequence[str], start: Any, end: Any
) -> pd.DataFrame:
    """Every incident of the grids ``grid_codes``: ``id``, ``lon``, ``lat`` (WGS84, float),
    ``effort`` (its category's, 1.0 without one), ``in_window`` (reported in
    ``[start, end)``) and ``base_grid`` (its grid code)."""
    rows = conn.execute(
        text(
            "SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, "
            "coalesce(c.effort, 1.0) AS effort, "
            "(i.reported_at >= :s AND i.reported_at < :e) AS in_window, "
            "i.grid_code AS base_grid FROM incident i "
            "LEFT JOIN category c ON c.code = i.category WHERE i.grid_code = ANY(:g)"
        ),
        {"g": list(grid_codes), "s": start, "e": end},
    ).all()
    out = pd.DataFrame(rows, columns=["id", "lon", "lat", "effort", "in_window", "base_grid"])
    for c in ("lon", "lat", "effort"):
        out[c] = out[c].astype(float)
    out["in_window"] = out["in_window"].astype(bool)
    return out


def buildings_in_bbox(conn: Connection, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    """Building points whose location is in ``bounds`` (xmin, ymin, xmax, ymax; WGS84):
    ``lon``, ``lat``, ``households``, ``population`` (all float)."""
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    rows = conn.execute(
        text(
            "SELECT ST_X(geom), ST_Y(geom), households, population FROM building "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        ),
        {"x0": xmin, "y0": ymin, "x1": xmax, "y1": ymax},
    ).all()
    return pd.DataFrame(
        np.asarray(rows, dtype=float).reshape(len(rows), 4),
        columns=["lon", "lat", "households", "population"],
    )


def grid_workers(
    conn: Connection, grid_codes: Sequence[str], *, active_only: bool = True
) -> pd.DataFrame:
    """Worker accounts of the grids ``grid_codes``: ``account_id``, ``unit_code``
    (one row per account and grid; only active accounts with ``active_only``)."""
    rows = conn.execute(
        text(
            "SELECT au.account_id, au.unit_code FROM account_unit au JOIN account a "
            "ON a.id = au.account_id WHERE a.role = 'worker' AND au.unit_code = ANY(:g)"
            + (" AND a.active" if active_only else "")
        ),
        {"g": list(grid_codes)},
    ).all()
    return pd.DataFrame(rows, columns=["account_id", "unit_code"])


def load_reference(
    conn: Connection, version_id: int, start: Any, end: Any
) -> tuple[float, float, float, int]:
    """Sums over all grids of version ``version_id`` for the load index reference:
    (effort of incidents in ``[start, end)`` with a grid, households, area m², grid count)."""
    row = conn.execute(
        text(
            "SELECT (SELECT coalesce(sum(coalesce(c.effort, 1.0)), 0) FROM incident i "
            "  LEFT JOIN category c ON c.code = i.category "
            "  WHERE i.reported_at >= :s AND i.reported_at < :e AND i.grid_code IS NOT NULL),"
            " coalesce(sum(households), 0), coalesce(sum(area_m2), 0), count(*) "
            "FROM unit WHERE version_id = :v AND level = 'grid'"
        ),
        {"v": int(version_id), "s": start, "e": end},
    ).one()
    return float(row[0]), float(row[1]), float(row[2]), int(row[3])


# --------------------------------------------------------------------------- publish


def lock_publishing(conn: Connection) -> None:
    """Serialise publishers (readers are not blocked: they keep their snapshot)."""
    conn.execute(text("LOCK TABLE boundary_version IN SHARE ROW EXCLUSIVE MODE"))


def communities_snapshot(
    conn: Connection, version_id: int, communities: Sequence[str]
) -> set[tuple[Any, ...]]:
    """(code, name, md5 of the geometry) of the communities and their grids in a version:
    equal sets mean the version did not change them."""
    rows = conn.execute(
        text(
            "SELECT code, name, md5(ST_AsEWKB(geom)) FROM unit WHERE version_id = :v AND "
            "((level = 'community' AND code = ANY(:c)) OR (level = 'grid' AND "
            "parent_code = ANY(:c)))"
        ),
        {"v": int(version_id), "c": list(communities)},
    ).all()
    return {tuple(r) for r in rows}


def communities_with_street(
    conn: Connection, version_id: int, communities: Sequence[str]
) -> set[str]:
    """The communities of ``communities`` present in a version with a parent street."""
    return set(
        conn.execute(
            text(
                "SELECT code FROM unit WHERE version_id = :v AND level = 'community' AND "
                "code = ANY(:c) AND parent_code IS NOT NULL"
            ),
            {"v": int(version_id), "c": list(communities)},
        ).scalars()
    )


def community_parents(
    conn: Connection, version_id: int, communities: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """community code → (street code, district code) in a version."""
    rows = conn.execute(
        text(
            "SELECT c.code, c.parent_code, s.parent_code FROM unit c JOIN unit s "
            "ON s.version_id = c.version_id AND s.code = c.parent_code "
            "WHERE c.version_id = :v AND c.code = ANY(:c)"
        ),
        {"v": int(version_id), "c": list(communities)},
    ).all()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def incident_points(
    conn: Connection, grid_codes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The incidents of the grids ``grid_codes``: (ids int64, lon, lat (WGS84), grid codes
    object)."""
    rows = conn.execute(
        text(
            "SELECT id, ST_X(geom), ST_Y(geom), grid_code FROM incident WHERE grid_code = ANY(:g)"
        ),
        {"g": list(grid_codes)},
    ).all()
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=float),
        np.array([r[2] for r in rows], dtype=float),
        np.array([r[3] for r in rows], dtype=object),
    )


def reattribute_incidents(
    conn: Connection, attribution: pd.DataFrame, version_id: int, previous_version_id: int
) -> None:
    """Give incidents new codes, keeping their old ones in ``incident_attribution``.

    ``attribution`` has one row per incident: ``id``, ``grid``, ``community``, ``street``,
    ``district`` (None where outside). The incidents' ``version_id`` becomes
    ``version_id``; the old attribution is recorded under the incident's old version (or
    ``previous_version_id`` when it had none). Open incidents assigned at grid level follow
    their grid. Bulk: a temporary table filled by COPY, one INSERT, one UPDATE.
    """
    df = attribution[["id", "grid", "community", "street", "district"]]
    conn.execute(
        text(
            "CREATE TEMP TABLE _reattr (id bigint PRIMARY KEY, grid text, "
            "community text, street text, district text) ON COMMIT DROP"
        )
    )
    buf = io.StringIO()
    df.to_csv(buf, sep="\t", header=False, index=False, na_rep="\\N")
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]  # psycopg 3 connection
        with cur.copy("COPY _reattr FROM STDIN") as cp:
            cp.write(buf.getvalue())
    conn.execute(
        text(
            "INSERT INTO incident_attribution (incident_id, version_id, grid_code, "
            "community_code, street_code, district_code, superseded_at) "
            "SELECT i.id, coalesce(i.version_id, :v0), i.grid_code, i.community_code, "
            "i.street_code, i.district_code, now() FROM incident i JOIN _reattr r ON r.id = i.id "
            "ON CONFLICT (incident_id, version_id) DO NOTHING"
        ),
        {"v0": int(previous_version_id)},
    )
    conn.execute(
        text(
            "UPDATE incident i SET grid_code = r.grid, community_code = r.community, "
            "street_code = r.street, district_code = r.district, version_id = :v, "
            "assigned_unit = CASE WHEN i.assigned_level = 'grid' AND NOT (i.status = ANY(:done)) "
            "THEN r.grid ELSE i.assigned_unit END FROM _reattr r WHERE r.id = i.id"
        ),
        {"v": int(version_id), "done": list(DONE_STATUSES)},
    )


def move_worker(conn: Connection, account_id: int, from_code: str, to_code: str) -> None:
    """Move a worker's assignment from grid ``from_code`` to grid ``to_code``."""
    conn.execute(
        text(
            "INSERT INTO account_unit (account_id, unit_code) VALUES (:a, :t) "
            "ON CONFLICT DO NOTHING"
        ),
        {"a": int(account_id), "t": to_code},
    )
    conn.execute(
        text("DELETE FROM account_unit WHERE account_id = :a AND unit_code = :f"),
        {"a": int(account_id), "f": from_code},
    )
