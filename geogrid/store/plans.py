"""Plans in PostGIS: create, edit (validated), undo/redo, auto-partition, impact, publish.

A plan (table ``plan``) is a draft redraw of the grids of some communities, based on the
published boundary version at creation (``base_version_id``). Its edits are rows of
``plan_edit`` (``seq``, ``kind``, ``params`` JSON, ``undone``); the plan's current grids are
the base grids with the active (not undone) edits replayed in ``seq`` order. Undo marks the
last active edit undone, redo the first undone one; a new edit drops the undone ones
(the usual redo stack). Replayed coverages are cached per process, keyed by the ids of the
active edits, so an interactive session replays nothing.

Publishing (:func:`publish_plan`) is one transaction: validation, a new boundary version
(a copy of the published one with the plan communities' grids replaced), re-attribution
of the incidents whose grid changes (their old codes kept in ``incident_attribution``),
worker re-assignment to successor grids, ``publish_version`` and a ``map_change`` row.
Readers see the old or the new version, never a mix.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from geogrid.core.plans.edits import Coverage, EditResult, apply_edit, check_community
from geogrid.errors import Conflict, InvalidInput, NotFound, TopologyError
from geogrid.store.changes import record_units_change
from geogrid.store.units import (
    copy_units,
    create_version,
    insert_units,
    load_units,
    publish_version,
    published_version_id,
)

__all__ = [
    "create_plan",
    "list_plans",
    "get_plan",
    "plan_coverage",
    "add_edit",
    "undo",
    "redo",
    "autopartition_plan",
    "plan_data",
    "impact",
    "diff",
    "publish_plan",
    "plan_geojson",
]

_lock = threading.RLock()
_base_cache: dict[tuple[str, int], Coverage] = {}
_state_cache: dict[tuple[str, int], tuple[tuple[int, ...], Coverage]] = {}
_sessions: dict[tuple[str, int, str], Any] = {}
_data_cache: dict[tuple[str, int, str], Any] = {}


def _key(engine: Engine) -> str:
    return str(engine.url)


# --------------------------------------------------------------------------- plans


def create_plan(
    engine: Engine, communities: Iterable[str], name: str, *, author: str | None = None
) -> dict:
    """Create a plan on the published version for ``communities``; returns its row."""
    codes = sorted({str(c).strip() for c in communities if str(c).strip()})
    if not codes:
        raise InvalidInput("communities", list(communities), "one or more community codes")
    if not name or not str(name).strip():
        raise InvalidInput("name", name, "a non-empty plan name")
    with engine.begin() as conn:
        vid = published_version_id(conn)
        if vid is None:
            raise NotFound("no boundary version is published: nothing to plan on")
        found = set(
            conn.execute(
                text(
                    "SELECT code FROM unit WHERE version_id = :v AND level = 'community' "
                    "AND code = ANY(:c)"
                ),
                {"v": vid, "c": codes},
            ).scalars()
        )
        missing = [c for c in codes if c not in found]
        if missing:
            raise InvalidInput(
                "communities", missing, f"community codes of the published version {vid}"
            )
        pid = conn.execute(
            text(
                "INSERT INTO plan (name, author, base_version_id, community_codes) "
                "VALUES (:n, :a, :v, :c) RETURNING id"
            ),
            {"n": str(name).strip(), "a": author, "v": vid, "c": codes},
        ).scalar_one()
    return get_plan(engine, int(pid))


def _plan_row(conn: Connection, plan_id: int, *, lock: bool = False) -> dict:
    row = (
        conn.execute(
            text(
                "SELECT id, name, author, base_version_id, community_codes, status, "
                "published_version_id, created_at, updated_at FROM plan WHERE id = :i"
                + (" FOR UPDATE" if lock else "")
            ),
            {"i": int(plan_id)},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFound(f"plan {plan_id} does not exist")
    return dict(row)


def _edits(conn: Connection, plan_id: int) -> list[dict]:
    rows = (
        conn.execute(
            text(
                "SELECT id, seq, kind, params, undone, author, created_at FROM plan_edit "
                "WHERE plan_id = :p ORDER BY seq"
            ),
            {"p": int(plan_id)},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def get_plan(engine: Engine, plan_id: int) -> dict:
    """The plan row with its edits (without params geometry)."""
    with engine.connect() as conn:
        row = _plan_row(conn, plan_id)
        row["edits"] = [
            {k: v for k, v in e.items() if k != "params"}
            | {"summary": _summary(e["kind"], e["params"])}
            for e in _edits(conn, plan_id)
        ]
    return _jsonable(row)


def _summary(kind: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if k not in ("line", "polygon", "grids", "result")}


def list_plans(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT p.id, p.name, p.author, p.base_version_id, p.community_codes, p.status, "
                    "p.published_version_id, p.created_at, p.updated_at, "
                    "count(e.id) FILTER (WHERE NOT e.undone) AS edits "
                    "FROM plan p LEFT JOIN plan_edit e ON e.plan_id = p.id GROUP BY p.id "
                    "ORDER BY p.id"
                )
            )
            .mappings()
            .all()
        )
    return [_jsonable(dict(r)) for r in rows]


def _jsonable(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}


# --------------------------------------------------------------------------- coverage


def _base_coverage(engine: Engine | Connection, plan: dict) -> Coverage:
    key = (_key(engine if isinstance(engine, Engine) else engine.engine), int(plan["id"]))
    with _lock:
        if key in _base_cache:
            return _base_cache[key]
    vid = int(plan["base_version_id"])
    codes = list(plan["community_codes"])
    comms = load_units(engine, "community", version=vid, codes=codes)
    grids = load_units(engine, "grid", version=vid, parent_codes=codes)
    cov = Coverage(
        comms[["code", "name", "parent_code", "households", "population", "geometry"]],
        gpd.GeoDataFrame(
            grids[["code", "name", "parent_code"]], geometry=grids.geometry.values, crs="EPSG:4326"
        ),
        frozenset(grids["code"]),
    )
    with _lock:
        _base_cache[key] = cov
    return cov


def _replay(engine: Engine | Connection, plan: dict, edits: list[dict]) -> Coverage:
    active = [e for e in edits if not e["undone"]]
    ids = tuple(int(e["id"]) for e in active)
    key = (_key(engine if isinstance(engine, Engine) else engine.engine), int(plan["id"]))
    with _lock:
        hit = _state_cache.get(key)
    if hit is not None and hit[0] == ids:
        return hit[1]
    start, cov = 0, _base_coverage(engine, plan)
    if hit is not None and ids[: len(hit[0])] == hit[0]:  # continue from the cached prefix
        start, cov = len(hit[0]), hit[1]
    for e in active[start:]:
        cov, _ = apply_edit(cov, e["kind"], e["params"])
    with _lock:
        _state_cache[key] = (ids, cov)
    return cov


def plan_coverage(engine: Engine, plan_id: int) -> tuple[dict, Coverage]:
    """The plan row and its current coverage (base + active edits)."""
    with engine.connect() as conn:
        plan = _plan_row(conn, plan_id)
        edits = _edits(conn, plan_id)
    return plan, _replay(engine, plan, edits)


def _change(old: Coverage, new: Coverage) -> EditResult:
    """What differs between two coverages (codes removed, added, modified)."""
    a = old.grids.set_index("code")
    b = new.grids.set_index("code")
    removed = sorted(set(a.index) - set(b.index))
    added = sorted(set(b.index) - set(a.index))
    modified = [
        c
        for c in sorted(set(a.index) & set(b.index))
        if a.at[c, "name"] != b.at[c, "name"]
        or not shapely.equals_exact(a.geometry[c], b.geometry[c], 0.0)
    ]
    return EditResult("", removed, added, modified)


def _after_change(engine: Engine, plan_id: int, old: Coverage, new: Coverage) -> None:
    """Bring cached impact sessions of the plan to the new coverage (incrementally)."""
    url = _key(engine)
    with _lock:
        sessions = [(k, s) for k, s in _sessions.items() if k[0] == url and k[1] == plan_id]
    if not sessions:
        return
    res = _change(old, new)
    for _, s in sessions:
        s.update(new.grids, res)


def _check_draft(plan: dict) -> None:
    if plan["status"] != "draft":
        raise Conflict(f"plan {plan['id']} is {plan['status']}: only draft plans change")


def add_edit(
    engine: Engine, plan_id: int, kind: str, params: dict, *, author: str | None = None
) -> dict:
    """Apply one edit (validated; TopologyError when refused) and store it."""
    if not isinstance(params, dict):
        raise InvalidInput("params", params, "a JSON object")
    with engine.begin() as conn:
        plan = _plan_row(conn, plan_id, lock=True)
        _check_draft(plan)
        edits = _edits(conn, plan_id)
        before = _replay(conn, plan, edits)
        after, res = apply_edit(before, kind, params)
        conn.execute(text("DELETE FROM plan_edit WHERE plan_id = :p AND undone"), {"p": plan_id})
        seq = max((e["seq"] for e in edits if not e["undone"]), default=0) + 1
        eid = conn.execute(
            text(
                "INSERT INTO plan_edit (plan_id, seq, kind, params, author) VALUES "
                "(:p, :s, :k, CAST(:params AS jsonb), :a) RETURNING id"
            ),
            {
                "p": plan_id,
                "s": seq,
                "k": kind,
                "params": json.dumps(params, default=_js),
                "a": author,
            },
        ).scalar_one()
        conn.execute(text("UPDATE plan SET updated_at = now() WHERE id = :p"), {"p": plan_id})
        ids = tuple(int(e["id"]) for e in edits if not e["undone"]) + (int(eid),)
    with _lock:
        _state_cache[(_key(engine), int(plan_id))] = (ids, after)
    _after_change(engine, plan_id, before, after)
    return {
        "edit_id": int(eid),
        "seq": seq,
        "kind": kind,
        "community": res.community,
        "removed": res.removed,
        "added": res.added,
        "modified": res.modified,
        "grids": len(after.grids),
    }


def _js(o: Any) -> Any:
    if isinstance(o, shapely.Geometry):
        return json.loads(shapely.to_geojson(o))
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    raise TypeError(type(o).__name__)


def _undo_redo(engine: Engine, plan_id: int, undo: bool) -> dict:
    with engine.begin() as conn:
        plan = _plan_row(conn, plan_id, lock=True)
        _check_draft(plan)
        edits = _edits(conn, plan_id)
        before = _replay(conn, plan, edits)
        if undo:
            cand = [e for e in edits if not e["undone"]]
            if not cand:
                raise Conflict(f"plan {plan_id} has no edit to undo")
            target = cand[-1]
        else:
            cand = [e for e in edits if e["undone"]]
            if not cand:
                raise Conflict(f"plan {plan_id} has no undone edit to redo")
            target = cand[0]
        conn.execute(
            text("UPDATE plan_edit SET undone = :u WHERE id = :i"), {"u": undo, "i": target["id"]}
        )
        conn.execute(text("UPDATE plan SET updated_at = now() WHERE id = :p"), {"p": plan_id})
        target["undone"] = undo
        after = _replay(conn, plan, edits)
    _after_change(engine, plan_id, before, after)
    return {
        "edit_id": int(target["id"]),
        "seq": int(target["seq"]),
        "kind": target["kind"],
        "undone": undo,
        "grids": len(after.grids),
    }


def undo(engine: Engine, plan_id: int) -> dict:
    """Undo the last active edit."""
    return _undo_redo(engine, plan_id, True)


def redo(engine: Engine, plan_id: int) -> dict:
    """Redo the first undone edit."""
    return _undo_redo(engine, plan_id, False)


def plan_geojson(engine: Engine, plan_id: int) -> dict:
    """The plan's grids as a GeoJSON FeatureCollection (EPSG:4326)."""
    _, cov = plan_coverage(engine, plan_id)
    return json.loads(cov.grids.to_json(drop_id=True))


# --------------------------------------------------------------------------- impact


def _window(start: Any, end: Any) -> tuple[datetime, datetime]:
    """The incident window of an impact preview (default: the year up to now), read like
    every other window (:func:`geogrid.services.metrics.resolve_window`)."""
    from geogrid.services.metrics import resolve_window

    start_d, end_d, _ = resolve_window(start, end, days=365, names=("start", "end"))
    return start_d, end_d


def plan_data(
    engine: Engine, plan_id: int, *, start: Any = None, end: Any = None, weights: Any = None
):
    """Read a plan's :class:`~geogrid.core.plans.impact.PlanData` (incidents of every time
    in its communities, ``in_window`` for ``[start, end)``, default the last 365 days)."""
    from geogrid.core.plans.impact import PlanData

    start, end = _window(start, end)
    with engine.connect() as conn:
        plan = _plan_row(conn, plan_id)
        cov = _base_coverage(conn, plan)
        vid = int(plan["base_version_id"])
        codes = cov.grids["code"].tolist()
        inc = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT i.id, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, "
                    "coalesce(c.effort, 1.0) AS effort, "
                    "(i.reported_at >= :s AND i.reported_at < :e) AS in_window, "
                    "i.grid_code AS base_grid FROM incident i "
                    "LEFT JOIN category c ON c.code = i.category WHERE i.grid_code = ANY(:g)"
                ),
                {"g": codes, "s": start, "e": end},
            ).all(),
            columns=["id", "lon", "lat", "effort", "in_window", "base_grid"],
        )
        xmin, ymin, xmax, ymax = cov.communities.total_bounds
        bld = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom), households, population FROM building "
                    "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
                ),
                {"x0": xmin, "y0": ymin, "x1": xmax, "y1": ymax},
            ).all(),
            columns=["lon", "lat", "households", "population"],
        )
        workers = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT au.account_id, au.unit_code FROM account_unit au JOIN account a "
                    "ON a.id = au.account_id WHERE a.active AND a.role = 'worker' "
                    "AND au.unit_code = ANY(:g)"
                ),
                {"g": codes},
            ).all(),
            columns=["account_id", "unit_code"],
        )
        ref = conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(coalesce(c.effort, 1.0)), 0) FROM incident i "
                "  LEFT JOIN category c ON c.code = i.category "
                "  WHERE i.reported_at >= :s AND i.reported_at < :e AND i.grid_code IS NOT NULL),"
                " count(*), coalesce(sum(households), 0), coalesce(sum(area_m2), 0) "
                "FROM unit WHERE version_id = :v AND level = 'grid'"
            ),
            {"v": vid, "s": start, "e": end},
        ).one()
    # keep only the buildings inside the plan's communities
    if len(bld):
        inside = np.zeros(len(bld), dtype=bool)
        for g in cov.communities.geometry:
            shapely.prepare(g)
            inside |= shapely.intersects_xy(g, bld["lon"].to_numpy(), bld["lat"].to_numpy())
        bld = bld[inside].reset_index(drop=True)
    n = max(int(ref[1]), 1)
    reference = (float(ref[0]) / n, float(ref[2]) / n, float(ref[3]) / 1e6 / n)
    for c in ("lon", "lat", "effort"):
        inc[c] = inc[c].astype(float)
    inc["in_window"] = inc["in_window"].astype(bool)
    for c in ("households", "population"):
        bld[c] = bld[c].astype(float)
    base = cov.grids.copy()
    return PlanData(cov.communities, base, inc, bld, workers, reference, weights, (start, end))


def _session(engine: Engine, plan_id: int, start: Any, end: Any):
    from geogrid.core.plans.impact import ImpactSession

    s, e = _window(start, end)
    # a window given to the day shares the session (the default: the last 365 days)
    wkey = f"{s.date()}/{e.date()}"
    key = (_key(engine), int(plan_id), wkey)
    with _lock:
        sess = _sessions.get(key)
    _, cov = plan_coverage(engine, plan_id)
    if sess is None:
        data = plan_data(engine, plan_id, start=s, end=e)
        sess = ImpactSession(data, cov.grids)
        with _lock:
            _sessions[key] = sess
    elif not sess.grids["code"].equals(cov.grids["code"].reset_index(drop=True)) or any(
        not shapely.equals_exact(a, b, 0.0)
        for a, b in zip(sess.grids.geometry, cov.grids.geometry, strict=False)
    ):
        sess.update(cov.grids, _change(Coverage(cov.communities, sess.grids), cov))
    return sess


def impact(engine: Engine, plan_id: int, *, start: Any = None, end: Any = None) -> dict:
    """Plan metrics side by side with the published grids (see geogrid.core.plans.impact)."""
    return _session(engine, plan_id, start, end).report()


def diff(engine: Engine, plan_id: int, *, start: Any = None, end: Any = None) -> dict:
    """Grids, incidents and workers that change between the base version and the plan."""
    from geogrid.core.plans.impact import diff_plan

    sess = _session(engine, plan_id, start, end)
    return diff_plan(sess.data, sess)


def autopartition_plan(
    engine: Engine,
    plan_id: int,
    *,
    communities: list[str] | None = None,
    n: int | None = None,
    target: float | None = None,
    load: str = "households",
    cell_m: float = 75.0,
    shape: str = "hex",
    start: Any = None,
    end: Any = None,
    seed: int = 0,
    author: str | None = None,
) -> dict:
    """Re-cut communities of a plan (default: all) into ``n`` grids or grids under
    ``target`` load, ``load`` = ``households`` or ``load_index``; stored as one edit
    (undoable). Returns the balance achieved per community."""
    from geogrid.core.plans.partition import autopartition

    if load not in ("households", "load_index"):
        raise InvalidInput("load", load, "households or load_index")
    plan, cov = plan_coverage(engine, plan_id)
    _check_draft(plan)
    comms = list(communities or plan["community_codes"])
    bad = [c for c in comms if c not in set(plan["community_codes"])]
    if bad:
        raise InvalidInput("communities", bad, f"communities of plan {plan_id}")
    data = _session(engine, plan_id, start, end).data
    b = data.buildings
    lon, lat, wt = b["lon"].to_numpy(), b["lat"].to_numpy(), b["households"].to_numpy()
    if load == "load_index":
        # the load index is linear: households and effort-weighted incidents as weighted
        # points, the area term spread by area inside the partitioner (area_share)
        from geogrid.services.metrics import LoadWeights

        w = data.weights or LoadWeights()
        ref_e, ref_h, ref_a = data.reference
        tot = w.incidents + w.households + w.area
        inc = data.incidents[data.incidents["in_window"]]
        lon = np.concatenate([lon, inc["lon"].to_numpy()])
        lat = np.concatenate([lat, inc["lat"].to_numpy()])
        wt = np.concatenate(
            [
                100 * w.households / tot * wt / max(ref_h, 1e-12),
                100 * w.incidents / tot * inc["effort"].to_numpy() / max(ref_e, 1e-12),
            ]
        )
    parts = autopartition(
        cov,
        comms,
        n=n,
        target=target,
        points_lon=lon,
        points_lat=lat,
        points_weight=wt,
        cell_m=cell_m,
        shape=shape,
        seed=seed,
    )
    params = {
        "communities": comms,
        "n": n,
        "target": target,
        "load": load,
        "cell_m": cell_m,
        "shape": shape,
        "seed": seed,
        "balance": {p.community: _clean(p.balance) for p in parts},
        "result": [
            {
                "community": p.community,
                "grids": [
                    {
                        "code": g["code"],
                        "name": g["name"],
                        "geometry": json.loads(shapely.to_geojson(g["geometry"])),
                    }
                    for g in p.grids
                ],
            }
            for p in parts
        ],
    }
    out = add_edit(engine, plan_id, "autopartition", params, author=author)
    out["balance"] = params["balance"]
    return out


def _clean(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


# --------------------------------------------------------------------------- publish


def _snapshot(conn: Connection, vid: int, communities: list[str]) -> set[tuple]:
    rows = conn.execute(
        text(
            "SELECT code, name, md5(ST_AsEWKB(geom)) FROM unit WHERE version_id = :v AND "
            "((level = 'community' AND code = ANY(:c)) OR (level = 'grid' AND "
            "parent_code = ANY(:c)))"
        ),
        {"v": vid, "c": communities},
    ).all()
    return {tuple(r) for r in rows}


def publish_plan(engine: Engine, plan_id: int, *, author: str | None = None) -> dict:
    """Publish a plan as a new boundary version, in one transaction (see module doc).

    Raises
    ------
    TopologyError  the plan's grids do not partition their communities
    Conflict  the plan is not a draft, or its communities changed in the published
        version since the plan was created (HTTP 409)
    """
    from geogrid.core.plans.impact import locate_points

    t0 = datetime.now(UTC)
    with engine.begin() as conn:
        plan = _plan_row(conn, plan_id, lock=True)
        _check_draft(plan)
        cov = _replay(conn, plan, _edits(conn, plan_id))
        comms = list(plan["community_codes"])
        # serialise publishers; readers are not blocked (they keep their snapshot)
        conn.execute(text("LOCK TABLE boundary_version IN SHARE ROW EXCLUSIVE MODE"))
        current = published_version_id(conn)
        base = int(plan["base_version_id"])
        if current is None:
            raise Conflict("no boundary version is published")
        if current != base and _snapshot(conn, base, comms) != _snapshot(conn, current, comms):
            raise Conflict(
                f"plan {plan_id} is based on version {base}, but version {current} is "
                f"published now and changed communities {comms}: create a new plan"
            )
        # ---- validate: every community exactly partitioned, every grid under a parent
        findings: list = []
        for c in comms:
            findings.extend(check_community(cov, c, contiguous=list(cov.grids_of(c)["code"])))
        orphans = cov.grids[~cov.grids["parent_code"].isin(comms)]
        for code in orphans["code"]:
            findings.append(
                {
                    "kind": "orphan",
                    "codes": [code],
                    "level": "grid",
                    "location": None,
                    "area_m2": 0.0,
                    "message": f"grid {code} is not under a plan community",
                }
            )
        present = set(
            conn.execute(
                text(
                    "SELECT code FROM unit WHERE version_id = :v AND level = 'community' AND "
                    "code = ANY(:c) AND parent_code IS NOT NULL"
                ),
                {"v": current, "c": comms},
            ).scalars()
        )
        for c in comms:
            if c not in present:
                findings.append(
                    {
                        "kind": "orphan",
                        "codes": [c],
                        "level": "community",
                        "location": None,
                        "area_m2": 0.0,
                        "message": f"community {c} is missing or has no street",
                    }
                )
        if findings:
            raise TopologyError(
                f"plan {plan_id} cannot be published: {len(findings)} finding(s)", findings
            )
        old_grids = load_units(conn, "grid", version=current, parent_codes=comms)
        chain = dict(
            conn.execute(
                text(
                    "SELECT c.code, c.parent_code || '|' || s.parent_code FROM unit c JOIN unit s "
                    "ON s.version_id = c.version_id AND s.code = c.parent_code "
                    "WHERE c.version_id = :v AND c.code = ANY(:c)"
                ),
                {"v": current, "c": comms},
            ).all()
        )
        # ---- the new grids with prorated households/population and areas
        new = _grid_units(conn, cov)
        vid = create_version(
            conn,
            f"plan {plan_id}: {plan['name']}",
            source=f"plan {plan_id}",
            author=author or plan["author"],
            based_on=current,
            note=f"grids of communities {', '.join(comms)} redrawn",
        )
        copy_units(conn, current, vid, exclude_codes=old_grids["code"].tolist())
        insert_units(conn, vid, new)
        # ---- re-attribute incidents of the old grids whose grid changes
        rows = conn.execute(
            text(
                "SELECT id, ST_X(geom), ST_Y(geom), grid_code FROM incident "
                "WHERE grid_code = ANY(:g)"
            ),
            {"g": old_grids["code"].tolist()},
        ).all()
        moved = 0
        if rows:
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            lon = np.array([r[1] for r in rows], dtype=float)
            lat = np.array([r[2] for r in rows], dtype=float)
            old = np.array([r[3] for r in rows], dtype=object)
            pos = locate_points(new.geometry.array, lon, lat)
            codes = np.append(new["code"].to_numpy(dtype=object), None)[pos]
            change = codes != old
            moved = int(change.sum())
            if moved:
                _reattribute(conn, ids[change], codes[change], new, chain, vid, current)
        # ---- workers
        workers = _reassign_workers(conn, old_grids, new)
        publish_version(conn, vid)
        touched = sorted(set(old_grids["code"]) | set(new["code"]))
        record_units_change(conn, vid, touched, "publish", previous_version_id=current)
        conn.execute(
            text(
                "UPDATE plan SET status = 'published', published_version_id = :v, "
                "updated_at = now() WHERE id = :p"
            ),
            {"v": vid, "p": plan_id},
        )
    return {
        "plan_id": int(plan_id),
        "version_id": int(vid),
        "previous_version_id": current,
        "grids": int(len(new)),
        "incidents_reattributed": moved,
        "workers": workers,
        "workers_needing_decision": [w for w in workers if w["needs_decision"]],
        "seconds": round((datetime.now(UTC) - t0).total_seconds(), 2),
    }


def _grid_units(conn: Connection, cov: Coverage) -> gpd.GeoDataFrame:
    """Unit rows of the plan grids: households/population prorated from buildings."""
    from geogrid.core.plans.impact import shape_metrics

    grids = cov.grids.reset_index(drop=True)
    xmin, ymin, xmax, ymax = grids.total_bounds
    bld = conn.execute(
        text(
            "SELECT ST_X(geom), ST_Y(geom), households, population FROM building "
            "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        ),
        {"x0": xmin, "y0": ymin, "x1": xmax, "y1": ymax},
    ).all()
    hh = np.zeros(len(grids))
    pop = np.zeros(len(grids))
    if bld:
        from geogrid.core.plans.impact import locate_points

        arr = np.asarray(bld, dtype=float)
        pos = locate_points(grids.geometry.array, arr[:, 0], arr[:, 1])
        ok = pos >= 0
        hh = np.bincount(pos[ok], weights=arr[ok, 2], minlength=len(grids))
        pop = np.bincount(pos[ok], weights=arr[ok, 3], minlength=len(grids))
    comm = cov.communities.set_index("code")
    for c in comm.index:
        sel = (grids["parent_code"] == c).to_numpy()
        for arr_, col in ((hh, "households"), (pop, "population")):
            s = arr_[sel].sum()
            want = float(comm.at[c, col] or 0)
            if s > 0 and want > 0:
                arr_[sel] = _largest_remainder(arr_[sel] / s * want, int(round(want)))
    return gpd.GeoDataFrame(
        {
            "code": grids["code"],
            "name": grids["name"],
            "level": "grid",
            "parent_code": grids["parent_code"],
            "population": np.round(pop).astype(np.int64),
            "households": np.round(hh).astype(np.int64),
            "area_m2": shape_metrics(grids.geometry)["area_m2"].to_numpy(),
        },
        geometry=grids.geometry.values,
        crs="EPSG:4326",
    )


def _largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    base = np.floor(x)
    rest = int(total - base.sum())
    if rest > 0:
        base[np.argsort(-(x - base))[:rest]] += 1
    return base


def _reattribute(
    conn: Connection,
    ids: np.ndarray,
    codes: np.ndarray,
    new: gpd.GeoDataFrame,
    chain: dict,
    vid: int,
    previous: int,
) -> None:
    parent = dict(zip(new["code"], new["parent_code"], strict=True))
    comm = [parent.get(c) for c in codes]
    street = [chain.get(c, "|").split("|")[0] or None if c else None for c in comm]
    district = [chain.get(c, "|").split("|")[1] or None if c else None for c in comm]
    df = pd.DataFrame(
        {"id": ids, "grid": codes, "community": comm, "street": street, "district": district}
    )
    conn.execute(
        text(
            "CREATE TEMP TABLE _reattr (id bigint PRIMARY KEY, grid text, "
            "community text, street text, district text) ON COMMIT DROP"
        )
    )
    buf = io.StringIO()
    df.to_csv(buf, sep="\t", header=False, index=False, na_rep="\\N")
    with conn.connection.driver_connection.cursor() as cur:
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
        {"v0": previous},
    )
    conn.execute(
        text(
            "UPDATE incident i SET grid_code = r.grid, community_code = r.community, "
            "street_code = r.street, district_code = r.district, version_id = :v, "
            "assigned_unit = CASE WHEN i.assigned_level = 'grid' AND i.status NOT IN "
            "('resolved', 'closed', 'rejected', 'duplicate') THEN r.grid ELSE i.assigned_unit END "
            "FROM _reattr r WHERE r.id = i.id"
        ),
        {"v": vid},
    )


def _reassign_workers(conn: Connection, old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> list[dict]:
    from geogrid.core.plans.impact import PlanData, worker_successors

    ws = pd.DataFrame(
        conn.execute(
            text(
                "SELECT au.account_id, au.unit_code FROM account_unit au JOIN account a ON "
                "a.id = au.account_id WHERE a.role = 'worker' AND au.unit_code = ANY(:g)"
            ),
            {"g": old["code"].tolist()},
        ).all(),
        columns=["account_id", "unit_code"],
    )
    data = PlanData(gpd.GeoDataFrame(), old, pd.DataFrame(), pd.DataFrame(), ws, (1, 1, 1))
    out = worker_successors(data, new)
    gone = set(old["code"]) - set(new["code"])
    for w in out:
        w["reassigned"] = False
        if w["from"] in gone and w["to"] is not None:
            conn.execute(
                text(
                    "INSERT INTO account_unit (account_id, unit_code) VALUES "
                    "(:a, :t) ON CONFLICT DO NOTHING"
                ),
                {"a": w["account_id"], "t": w["to"]},
            )
            conn.execute(
                text("DELETE FROM account_unit WHERE account_id = :a AND unit_code = :f"),
                {"a": w["account_id"], "f": w["from"]},
            )
            w["reassigned"] = True
    return out
