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
from geogrid.store.workflow import PUBLISH_LOCK

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
    "stamp_publish",
    "communities_snapshot",
    "communities_with_street",
    "community_parents",
    "incident_points",
    "reattribute_incidents",
    "community_fingerprints",
    "carry_units",
    "staffing_rows",
    "replace_staffing",
    "worker_accounts",
    "set_worker_grids",
    "insert_reference_lines",
    "reference_lines",
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
    "owner_id",
)
#: the owner's name beside a plan row (``plan`` aliased ``p``)
_OWNER = "(SELECT coalesce(a.ref, a.name) FROM account a WHERE a.id = p.owner_id) AS owner"
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
    owner_id: int | None = None,
) -> int:
    """Insert a draft plan row (owned by account ``owner_id``); returns its id."""
    pid = conn.execute(
        text(
            "INSERT INTO plan (name, author, base_version_id, community_codes, owner_id) "
            "VALUES (:n, :a, :v, :c, :o) RETURNING id"
        ),
        {
            "n": name,
            "a": author,
            "v": int(base_version_id),
            "c": list(communities),
            "o": None if owner_id is None else int(owner_id),
        },
    ).scalar_one()
    return int(pid)


def plan_row(conn: Connection, plan_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The row of plan ``plan_id`` (``FOR UPDATE`` with ``lock``).

    Raises
    ------
    NotFound  there is no such plan
    """
    cols = ", ".join(f"p.{c}" for c in PLAN_COLUMNS)
    sql = f"SELECT {cols}, {_OWNER} FROM plan p WHERE p.id = :i" + (
        " FOR UPDATE OF p" if lock else ""
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
            f"SELECT {cols}, {_OWNER}, count(e.id) FILTER (WHERE NOT e.undone) AS edits "
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
    """Serialise publishers (readers are not blocked: they keep their snapshot), and wait
    for the incidents being created to commit (they hold
    :data:`~geogrid.store.workflow.PUBLISH_LOCK` shared; new ones wait until the publish
    ends), so the re-attribution that follows sees every incident of the old grids."""
    conn.execute(text("LOCK TABLE boundary_version IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUBLISH_LOCK})


def stamp_publish(
    conn: Connection, version_id: int, previous_version_id: int, incident_ids: Sequence[int]
) -> None:
    """Set the times of a publish to the moment of this statement (``clock_timestamp()``,
    not the transaction's start): ``published_at`` of the new version, ``retired_at`` of
    the previous one and ``superseded_at`` of the attributions this transaction kept.
    Run it as the publish transaction's last statement, so ``as_of`` a moment inside the
    publish answers the version that was published then."""
    conn.execute(
        text(
            "WITH t AS MATERIALIZED (SELECT clock_timestamp() AS at), "
            "p AS (UPDATE boundary_version v SET published_at = t.at FROM t "
            "WHERE v.id = :v RETURNING 1), "
            "r AS (UPDATE boundary_version v SET retired_at = t.at FROM t "
            "WHERE v.id = :prev RETURNING 1), "
            "a AS (UPDATE incident_attribution x SET superseded_at = t.at FROM t "
            "WHERE x.incident_id = ANY(:ids) AND x.superseded_at = now() RETURNING 1) "
            "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM r), (SELECT count(*) FROM a)"
        ),
        {
            "v": int(version_id),
            "prev": int(previous_version_id),
            "ids": [int(i) for i in incident_ids],
        },
    )


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
    conn: Connection,
    attribution: pd.DataFrame,
    version_id: int,
    previous_version_id: int,
    *,
    actor_id: int | None = None,
    plan_id: int | None = None,
) -> None:
    """Give incidents new codes, keeping their old ones in ``incident_attribution``.

    ``attribution`` has one row per incident: ``id``, ``grid``, ``community``, ``street``,
    ``district`` (None where outside). The incidents' ``version_id`` becomes
    ``version_id``; the old attribution is recorded under the incident's old version (or
    ``previous_version_id`` when it had none). Open incidents assigned at grid level follow
    their grid. Each incident's history gets a ``reattributed`` event (old grid → new grid,
    the versions, the plan; by ``actor_id``). Bulk: a temporary table filled by COPY, two
    INSERTs, one UPDATE.
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
            "INSERT INTO incident_event (incident_id, at, actor_id, kind, note, data) "
            "SELECT i.id, now(), :actor, 'reattributed', "
            "'grid ' || coalesce(i.grid_code, '-') || ' → ' || coalesce(r.grid, '-') || "
            "' (version ' || coalesce(i.version_id, :v0) || ' → ' || :v || ')', "
            "jsonb_build_object('from_grid', i.grid_code, 'to_grid', r.grid, "
            "'from_community', i.community_code, 'to_community', r.community, "
            "'from_version', coalesce(i.version_id, :v0), 'version', CAST(:v AS integer), "
            "'plan_id', CAST(:plan AS integer)) "
            "FROM incident i JOIN _reattr r ON r.id = i.id"
        ),
        {
            "v0": int(previous_version_id),
            "v": int(version_id),
            "actor": actor_id,
            "plan": plan_id,
        },
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


def community_fingerprints(
    conn: Connection, version_id: int, communities: Sequence[str]
) -> dict[str, str | None]:
    """community code → a hash of the community and its grids (codes, names, geometries)
    in a version (None when the version lacks it): equal hashes mean unchanged."""
    rows = conn.execute(
        text(
            "SELECT c.code, md5(string_agg(u.level || ':' || u.code || ':' || u.name || ':' || "
            "md5(ST_AsEWKB(u.geom)), ',' ORDER BY u.level, u.code)) "
            "FROM unnest(CAST(:c AS text[])) AS c(code) LEFT JOIN unit u ON u.version_id = :v "
            "AND ((u.level = 'community' AND u.code = c.code) OR "
            "(u.level = 'grid' AND u.parent_code = c.code)) GROUP BY c.code"
        ),
        {"v": int(version_id), "c": list(communities)},
    ).all()
    return {str(r[0]): r[1] for r in rows}


def carry_units(
    conn: Connection, from_version: int, to_version: int, exclude_codes: Sequence[str]
) -> int:
    """Copy the units of a version into another except ``exclude_codes``, keeping when
    each took effect (``valid_from``: its own, or its version's ``published_at``)."""
    res = conn.execute(
        text(
            "INSERT INTO unit (version_id, code, name, level, parent_code, population, "
            "households, area_m2, attrs, geom, valid_from) "
            "SELECT :to, u.code, u.name, u.level, u.parent_code, u.population, u.households, "
            "u.area_m2, u.attrs, u.geom, coalesce(u.valid_from, v.published_at, v.created_at) "
            "FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            "WHERE u.version_id = :frm AND NOT (u.code = ANY(:codes))"
        ),
        {"to": int(to_version), "frm": int(from_version), "codes": list(exclude_codes)},
    )
    return int(res.rowcount)


# --------------------------------------------------------------------------- staffing


def staffing_rows(conn: Connection, plan_id: int) -> list[dict[str, Any]]:
    """The staffing decisions of a plan, in the order they were made."""
    rows = conn.execute(
        text(
            "SELECT action, grid_code AS grid, account_id, decided_by, decided_at "
            "FROM plan_staffing WHERE plan_id = :p ORDER BY id"
        ),
        {"p": int(plan_id)},
    ).mappings()
    return [dict(r) for r in rows]


def replace_staffing(
    conn: Connection, plan_id: int, decisions: Sequence[dict[str, Any]], decided_by: int | None
) -> None:
    """Replace the staffing decisions of a plan (``action``, ``grid``, ``account_id``)."""
    conn.execute(text("DELETE FROM plan_staffing WHERE plan_id = :p"), {"p": int(plan_id)})
    if decisions:
        conn.execute(
            text(
                "INSERT INTO plan_staffing (plan_id, action, grid_code, account_id, decided_by) "
                "VALUES (:p, :a, :g, :i, :by)"
            ),
            [
                {
                    "p": int(plan_id),
                    "a": d["action"],
                    "g": d.get("grid"),
                    "i": d.get("account_id"),
                    "by": decided_by,
                }
                for d in decisions
            ],
        )


def worker_accounts(conn: Connection, account_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """id → ``name``, ``ref``, ``active``, ``grids`` (all their grid codes) of the worker
    accounts among ``account_ids``."""
    rows = conn.execute(
        text(
            "SELECT a.id, a.name, a.ref, a.active, "
            "coalesce(array_agg(au.unit_code ORDER BY au.unit_code) "
            "FILTER (WHERE au.unit_code IS NOT NULL), '{}') AS grids "
            "FROM account a LEFT JOIN account_unit au ON au.account_id = a.id "
            "WHERE a.role = 'worker' AND a.id = ANY(:i) GROUP BY a.id"
        ),
        {"i": [int(a) for a in account_ids]},
    ).mappings()
    return {int(r["id"]): dict(r) for r in rows}


def set_worker_grids(
    conn: Connection, account_id: int, drop_codes: Sequence[str], add_codes: Sequence[str]
) -> None:
    """Remove a worker's assignments to ``drop_codes``, then bind them to ``add_codes``."""
    conn.execute(
        text("DELETE FROM account_unit WHERE account_id = :a AND unit_code = ANY(:d)"),
        {"a": int(account_id), "d": list(drop_codes)},
    )
    if add_codes:
        conn.execute(
            text(
                "INSERT INTO account_unit (account_id, unit_code) VALUES (:a, :t) "
                "ON CONFLICT DO NOTHING"
            ),
            [{"a": int(account_id), "t": c} for c in add_codes],
        )


# --------------------------------------------------------------------------- reference lines


def insert_reference_lines(
    conn: Connection, layer: str, kind: str, source: str | None, lines: pd.DataFrame
) -> int:
    """Store lines (``name``, ``wkb``: MultiLineString WKB hex in EPSG:4326) as layer
    ``layer`` (its earlier lines replaced); returns how many."""
    conn.execute(text("DELETE FROM reference_line WHERE layer = :l"), {"l": layer})
    if len(lines) == 0:
        return 0
    conn.execute(
        text(
            "INSERT INTO reference_line (layer, kind, name, source, geom) VALUES "
            "(:l, :k, :n, :s, ST_SetSRID(ST_GeomFromWKB(decode(:g, 'hex')), 4326))"
        ),
        [
            {"l": layer, "k": kind, "n": n, "s": source, "g": g}
            for n, g in zip(lines["name"], lines["wkb"], strict=True)
        ],
    )
    return len(lines)


def reference_lines(
    conn: Connection, bounds: tuple[float, float, float, float]
) -> list[tuple[str, str, bytes]]:
    """(layer, kind, WKB) of the reference lines meeting ``bounds`` (xmin, ymin, xmax,
    ymax; WGS84)."""
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    rows = conn.execute(
        text(
            "SELECT layer, kind, ST_AsBinary(geom) FROM reference_line "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id"
        ),
        {"x0": xmin, "y0": ymin, "x1": xmax, "y1": ymax},
    ).all()
    return [(str(r[0]), str(r[1]), bytes(r[2])) for r in rows]
