"""Patrols: record a worker's uploaded track and check-ins, measure it against the grids
(distance, time in each grid, coverage, buildings visited — :mod:`geogrid.core.patrol`),
and read a day's tracks and per worker × grid metrics inside the caller's scope.

Who records: workers and the unit admins (their own patrols) and ``admin``; planners,
leaders and analysts read only. Who reads (``GET /patrols``): a worker their own patrols;
a community/street/district admin the patrols attributed to their subtree (a patrol is
attributed to the grid it spent most time in); city-wide roles all. Workers' names are
clear for the worker themself, the admins of their units and ``admin``; masked for
planners, leaders and analysts. Clear reads are written to the audit trail.

Lengths and areas are measured in the city's metric CRS (``settings.city.metric_crs``,
else the CGCS2000 3° Gauss-Kruger zone of the track).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import numpy as np
import pyproj
import shapely
from sqlalchemy import Connection, Engine

from geogrid.core import crs as gcrs
from geogrid.core.accounts import UNIT_ROLES, Account
from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS, LEVEL_COLUMN, level_of_code, parent_chain
from geogrid.core.masking import mask_name
from geogrid.core.patrol import (
    MAX_POINTS,
    Track,
    TrackRules,
    clean_track,
    coverage,
    day_bounds,
    dwell_points,
    grid_metrics,
    locate_points,
    near_points,
    parse_day,
    track_crs,
)
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import audit, idempotency
from geogrid.settings import Settings, get_settings
from geogrid.store import patrols as store
from geogrid.store.engine import transaction

media_service: ModuleType | None
try:  # TERM-A's media service (issue 13); without it the sha256s stay on the record only
    from geogrid.services import media as media_service
except ImportError:  # pragma: no cover - depends on the media service being installed
    media_service = None

__all__ = [
    "FIELD_ROLES",
    "PATROL_PERSONAL",
    "MAX_CHECKINS",
    "rules_of",
    "codes_of_account",
    "attach_media",
    "record_patrol",
    "list_patrols",
    "patrol_metrics",
]

Bind = Engine | Connection

#: roles that record patrols and service entries (for themselves)
FIELD_ROLES = frozenset({*UNIT_ROLES, "admin"})
#: personal fields of a patrol as read
PATROL_PERSONAL = ("account_name",)
#: the most check-ins one upload may carry
MAX_CHECKINS = 500
#: how far (degrees) around a track grids and buildings are read
_PAD_DEG = 0.003
#: the times a GPS fix may have (seconds since the epoch: 1970 to 2200)
_EPOCH_S = (0.0, 7_258_118_400.0)


def rules_of(settings: Settings) -> TrackRules:
    """The track rules of the settings (``patrol_min_interval_s``, ``patrol_max_accuracy_m``)."""
    return TrackRules(
        min_interval_s=float(settings.patrol_min_interval_s),
        max_accuracy_m=float(settings.patrol_max_accuracy_m),
    )


def attach_media(
    conn: Connection, sha256s: Sequence[str], owner_kind: str, owner_id: int, actor: Account
) -> None:
    """Attach uploaded photos to a record with the media service (TERM-A), when installed:
    that is what lets ``GET /media/{sha256}`` serve them to the record's readers."""
    if sha256s and media_service is not None and hasattr(media_service, "attach"):
        media_service.attach(conn, list(sha256s), owner_kind, owner_id, actor)


def _require_field_role(actor: Account, what: str) -> None:
    if not actor.active or actor.role not in FIELD_ROLES:
        raise Forbidden(
            f"role {actor.role!r} may not record {what}: workers, community/street/district "
            "admins and admin do (planners, leaders and analysts read)"
        )


def _aware(value: Any, parameter: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(parameter, value, "an ISO 8601 time with a time zone")
    return value.astimezone(UTC)


def _num(value: Any, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(parameter, value, "a number")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInput(parameter, value, "a finite number")
    return v


def _parse_points(
    points: Sequence[Sequence[Any]], crs_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(wgs84 lon, lat, seconds, accuracy, source lon, source lat) of the uploaded points."""
    if len(points) > MAX_POINTS:
        raise InvalidInput("points", f"{len(points)} points", f"at most {MAX_POINTS} points")
    n = len(points)
    arr = np.full((n, 4), np.nan)
    for i, p in enumerate(points):
        if not isinstance(p, (list, tuple)) or len(p) not in (3, 4):
            raise InvalidInput(
                f"points[{i}]", p, "[lon, lat, epoch_ms] or [lon, lat, epoch_ms, accuracy_m]"
            )
        arr[i, 0] = _num(p[0], f"points[{i}][0] (lon)")
        arr[i, 1] = _num(p[1], f"points[{i}][1] (lat)")
        arr[i, 2] = _num(p[2], f"points[{i}][2] (epoch_ms)") / 1000.0
        if not _EPOCH_S[0] <= arr[i, 2] < _EPOCH_S[1]:
            raise InvalidInput(
                f"points[{i}][2] (epoch_ms)", p[2], "milliseconds since 1970 before 2200"
            )
        if len(p) == 4 and p[3] is not None:
            acc = _num(p[3], f"points[{i}][3] (accuracy_m)")
            if acc < 0:
                raise InvalidInput(f"points[{i}][3] (accuracy_m)", p[3], "metres >= 0")
            arr[i, 3] = acc
    lon, lat = gcrs.to_wgs84(arr[:, 0], arr[:, 1], crs_name) if n else (arr[:, 0], arr[:, 1])
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    bad = ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"points[{i}]", points[i], f"a coordinate on the earth in {crs_name}")
    return lon, lat, arr[:, 2], arr[:, 3], arr[:, 0], arr[:, 1]


def _parse_checkins(checkins: Sequence[Mapping[str, Any]], crs_name: str) -> list[dict[str, Any]]:
    if len(checkins) > MAX_CHECKINS:
        raise InvalidInput("checkins", f"{len(checkins)} check-ins", f"at most {MAX_CHECKINS}")
    out = []
    for i, ck in enumerate(checkins):
        x = _num(ck.get("lon"), f"checkins[{i}].lon")
        y = _num(ck.get("lat"), f"checkins[{i}].lat")
        wx, wy = gcrs.to_wgs84(x, y, crs_name)
        if not (abs(wx) <= 180 and abs(wy) <= 90):
            raise InvalidInput(f"checkins[{i}]", (x, y), f"a coordinate on the earth in {crs_name}")
        place = ck.get("place")
        bid = ck.get("building_id")
        if bid is None and not place:
            raise InvalidInput(f"checkins[{i}]", dict(ck), "a building_id or a place name")
        acc = ck.get("accuracy_m")
        out.append(
            {
                "lon": float(wx),
                "lat": float(wy),
                "at": _aware(ck.get("at"), f"checkins[{i}].at"),
                "building_id": None if bid is None else int(bid),
                "place": place,
                "accuracy_m": None if acc is None else _num(acc, f"checkins[{i}].accuracy_m"),
            }
        )
    return out


def _codes_of_grid(g: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        "grid_code": g["code"],
        "community_code": g["community_code"],
        "street_code": g["street_code"],
        "district_code": g["district_code"],
    }


def codes_of_account(actor: Account) -> dict[str, str | None]:
    """The attribution codes of an account's first unit (all None without units)."""
    out: dict[str, str | None] = dict.fromkeys(ATTRIBUTION_COLUMNS)
    if actor.units:
        for lv, code in parent_chain(sorted(actor.units)[0]).items():
            out[LEVEL_COLUMN[lv]] = code
    return out


def _bbox(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(lon.min()) - _PAD_DEG,
        float(lat.min()) - _PAD_DEG,
        float(lon.max()) + _PAD_DEG,
        float(lat.max()) + _PAD_DEG,
    )


def _measure(
    conn: Connection,
    track: Track,
    checkins: list[dict[str, Any]],
    rules: TrackRules,
    crs: pyproj.CRS,
) -> dict[str, Any]:
    """Grids, per-grid measures, buildings visited and check-in grids of a cleaned track."""
    lon = np.concatenate([track.lon, [c["lon"] for c in checkins]])
    lat = np.concatenate([track.lat, [c["lat"] for c in checkins]])
    if lon.size == 0:
        return {"grids": [], "rows": [], "visited": set(), "checkin_grid": [], "main": None}
    box = _bbox(lon, lat)
    grids = store.grids_near(conn, box)
    grids_m = gcrs.transform_geometries(
        np.asarray([g["geom"] for g in grids], dtype=object), "wgs84", crs
    )
    codes = [g["code"] for g in grids]
    metrics = grid_metrics(track, codes, grids_m, buffer_m=rules.buffer_m)
    ck_x, ck_y = (
        gcrs.project_xy(
            np.array([c["lon"] for c in checkins]), np.array([c["lat"] for c in checkins]), crs
        )
        if checkins
        else (np.zeros(0), np.zeros(0))
    )
    ck_x, ck_y = np.asarray(ck_x, dtype=float), np.asarray(ck_y, dtype=float)
    ck_grid = locate_points(shapely.points(np.column_stack([ck_x, ck_y])), grids_m)
    # buildings: stopped at (dwell points) or checked in near, and those named by a check-in
    dwell = dwell_points(track, rules.dwell_radius_m, rules.dwell_min_s)
    table = store.building_table(conn)
    bids, blon, blat = store.buildings_near(conn, table, box)
    bx, by = gcrs.project_xy(blon, blat, crs) if bids.size else (np.zeros(0), np.zeros(0))
    bx, by = np.asarray(bx, dtype=float), np.asarray(by, dtype=float)
    near = near_points(
        bx,
        by,
        np.concatenate([dwell[:, 0], ck_x]),
        np.concatenate([dwell[:, 1], ck_y]),
        rules.visit_radius_m,
    )
    b_grid = locate_points(shapely.points(np.column_stack([bx[near], by[near]])), grids_m)
    visited: dict[int, int] = {int(bids[k]): int(g) for k, g in zip(near, b_grid, strict=True)}
    for c, g in zip(checkins, ck_grid, strict=True):
        if c["building_id"] is not None:
            visited.setdefault(int(c["building_id"]), int(g))
    per_grid = np.bincount(
        np.asarray([g for g in visited.values() if g >= 0], dtype=int), minlength=len(grids)
    )
    rows = []
    for i, code in enumerate(codes):
        s, ln, cv = (
            float(metrics.seconds[i]),
            float(metrics.length_m[i]),
            float(metrics.coverage[i]),
        )
        b = int(per_grid[i]) if i < per_grid.size else 0
        if s > 0 or ln > 0 or cv > 0 or b > 0:
            rows.append(
                {
                    "grid_code": code,
                    "seconds_in_grid": s,
                    "length_m": ln,
                    "coverage": cv,
                    "buildings_visited": b,
                }
            )
    main = None
    if metrics.seconds.size and metrics.seconds.max() > 0:
        main = grids[int(np.argmax(metrics.seconds))]
    elif (ck_grid >= 0).any():
        main = grids[int(ck_grid[ck_grid >= 0][0])]
    elif rows:
        main = next(g for g in grids if g["code"] == rows[0]["grid_code"])
    return {
        "grids": grids,
        "rows": rows,
        "visited": visited,
        "checkin_grid": ck_grid.tolist(),
        "main": main,
        "table": table,
    }


def record_patrol(
    bind: Bind,
    *,
    actor: Account,
    started_at: datetime,
    ended_at: datetime,
    points: Sequence[Sequence[Any]],
    checkins: Sequence[Mapping[str, Any]] = (),
    crs: str = "wgs84",
    media: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Store an uploaded patrol with its per-grid measures and check-ins (one transaction).

    Parameters
    ----------
    actor : the worker (or unit admin) who walked it
    started_at, ended_at : aware times; ``duration_s`` is their difference
    points : ``[lon, lat, epoch_ms]`` or ``[lon, lat, epoch_ms, accuracy_m]`` in ``crs``
    checkins : ``{lon, lat, at, building_id?, place?, accuracy_m?}`` in ``crs``
    crs : ``wgs84``, ``gcj02``, ``bd09`` (or an EPSG code)
    media : sha256s of photos taken on the patrol (kept on the patrol)
    idempotency_key : a retry with the same key and body returns the first answer

    Returns
    -------
    ``{id, account_id, started_at, ended_at, distance_m, duration_s, points_received,
    points_kept, grids: [{grid_code, seconds_in_grid, length_m, coverage,
    buildings_visited}], buildings_visited, checkins: [ids], grid_code … district_code}``
    """
    _require_field_role(actor, "patrols")
    settings = settings or get_settings()
    start = _aware(started_at, "started_at")
    end = _aware(ended_at, "ended_at")
    if end < start:
        raise InvalidInput("ended_at", ended_at, f"a time at or after started_at ({started_at})")
    crs_name = gcrs.normalize_crs(crs)
    lon, lat, t_s, acc, src_x, src_y = _parse_points(points, crs_name)
    cks = _parse_checkins(checkins, crs_name)
    rules = rules_of(settings)
    media_list = [str(m) for m in media or []]
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="record_patrol",
            request={
                "started_at": start,
                "ended_at": end,
                "crs": crs_name,
                "points": np.column_stack([src_x, src_y, t_s, acc]).round(7).tolist(),
                "checkins": cks,
                "media": media_list,
            },
        )
        if first is not None:
            return first
        every_lon = np.concatenate([lon, [k["lon"] for k in cks]])
        if every_lon.size == 0:
            raise InvalidInput("points", [], "at least one point or one check-in")
        mcrs = track_crs(every_lon, settings.city.metric_crs)
        track = clean_track(lon, lat, t_s, acc, rules=rules, crs=mcrs)
        m = _measure(c, track, cks, rules, mcrs)
        table = m.get("table", "building")
        named = [k["building_id"] for k in cks if k["building_id"] is not None]
        missing = sorted(set(named) - store.building_exists(c, table, named))
        if missing:
            raise InvalidInput("checkins.building_id", missing[0], f"the id of a row of {table}")
        codes = _codes_of_grid(m["main"]) if m["main"] is not None else codes_of_account(actor)
        lines = track.lines_wgs84()
        pid = store.insert_patrol(
            c,
            {
                "account_id": actor.id,
                "started_at": start,
                "ended_at": end,
                "point_times": [datetime.fromtimestamp(float(s), UTC) for s in track.t],
                "accuracy_m": [None if not math.isfinite(a) else float(a) for a in track.accuracy],
                "points_received": track.received,
                "distance_m": track.distance_m,
                "duration_s": (end - start).total_seconds(),
                "buildings_visited": len(m["visited"]),
                "src_crs": crs_name,
                "metric_crs": mcrs.to_string(),
                "client_key": idempotency_key,
                "media": media_list or None,
                **codes,
            },
            None if shapely.is_empty(lines) else shapely.to_wkt(lines, rounding_precision=9),
        )
        store.insert_patrol_grids(c, pid, m["rows"])
        attach_media(c, media_list, "patrol", pid, actor)
        grids = m["grids"]
        ck_rows = []
        for k, gi in zip(cks, m["checkin_grid"], strict=True):
            kc = _codes_of_grid(grids[gi]) if gi >= 0 else dict.fromkeys(ATTRIBUTION_COLUMNS)
            ck_rows.append(
                {
                    **k,
                    **kc,
                    "patrol_id": pid,
                    "account_id": actor.id,
                    "building_source": table if k["building_id"] is not None else None,
                }
            )
        ck_ids = store.insert_checkins(c, ck_rows)
        audit.record(c, actor=actor, action="patrol.create", resource="patrol", ids=[pid])
        out = {
            "id": pid,
            "account_id": actor.id,
            "started_at": start,
            "ended_at": end,
            "distance_m": track.distance_m,
            "duration_s": (end - start).total_seconds(),
            "points_received": track.received,
            "points_kept": track.n,
            "metric_crs": mcrs.to_string(),
            "grids": m["rows"],
            "buildings_visited": len(m["visited"]),
            "checkins": ck_ids,
            **codes,
        }
        idempotency.remember(c, idempotency_key, principal=principal, answer=out, resource_id=pid)
    return out


def _check_unit(unit: str | None) -> str | None:
    if unit is None:
        return None
    level_of_code(unit, "unit")
    return unit


def _clear(scope: Scope, row: Mapping[str, Any]) -> bool:
    return scope.personal_clear(row) or (
        scope.account_id is not None and row.get("account_id") == scope.account_id
    )


def list_patrols(
    bind: Bind,
    *,
    scope: Scope,
    day: Any,
    account_id: int | None = None,
    unit: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """A day's patrols (started that day in the city's zone) as a GeoJSON FeatureCollection
    of their tracks (MultiLineString, WGS84), inside the caller's scope (see the module
    notes), of one account and/or touching one unit."""
    d = parse_day(day)
    start, end = day_bounds(d, tz or get_settings().city.timezone)
    rows = store.patrol_rows(
        bind,
        start=start,
        end=end,
        scope=scope,
        own_only=scope.role in ("worker",),
        account_id=account_id,
        unit=_check_unit(unit),
    )
    clear_ids = []
    features = []
    for r in rows:
        props = {k: v for k, v in r.items() if k != "track"}
        if _clear(scope, r):
            clear_ids.append(r["id"])
        else:
            props["account_name"] = mask_name(r["account_name"])
        features.append(
            {"type": "Feature", "id": r["id"], "geometry": r["track"], "properties": props}
        )
    audit.record_read(bind, scope, "patrol", clear_ids, list(PATROL_PERSONAL), {"day": str(d)})
    return {"type": "FeatureCollection", "day": d.isoformat(), "features": features}


def patrol_metrics(
    bind: Bind,
    *,
    scope: Scope,
    day: Any,
    unit: str | None = None,
    tz: str | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Per worker × grid metrics of a day: patrols, distance walked in the grid, seconds in
    it, buildings visited in it, and coverage — the share of the grid within 50 m of the
    union of the worker's tracks that day (not a sum of the patrols' coverages)."""
    settings = settings or get_settings()
    d = parse_day(day)
    start, end = day_bounds(d, tz or settings.city.timezone)
    unit = _check_unit(unit)
    own = scope.role in ("worker",)
    rows = store.patrol_grid_rows(bind, start=start, end=end, scope=scope, own_only=own, unit=unit)
    if not rows:
        return []
    tracks = store.patrol_rows(bind, start=start, end=end, scope=scope, own_only=own, with_wkb=True)
    lines: dict[int, list[Any]] = {}
    for t in tracks:
        if t["wkb"] is not None:
            lines.setdefault(int(t["account_id"]), []).append(shapely.from_wkb(t["wkb"]))
    every = [g for ls in lines.values() for g in ls]
    cov: dict[tuple[int, str], float] = {}
    if every:
        b = shapely.bounds(np.asarray(every, dtype=object))
        box = (
            b[:, 0].min() - _PAD_DEG,
            b[:, 1].min() - _PAD_DEG,
            b[:, 2].max() + _PAD_DEG,
            b[:, 3].max() + _PAD_DEG,
        )
        grids = store.grids_near(bind, box)
        mcrs = track_crs(np.array([box[0], box[2]]), settings.city.metric_crs)
        grids_m = gcrs.transform_geometries(
            np.asarray([g["geom"] for g in grids], dtype=object), "wgs84", mcrs
        )
        rules = rules_of(settings)
        for acc, ls in lines.items():
            merged = gcrs.transform_geometries(shapely.union_all(ls), "wgs84", mcrs)
            shares = coverage(merged, grids_m, rules.buffer_m)
            for g, share in zip(grids, shares, strict=True):
                cov[(acc, g["code"])] = float(share)
    out = []
    clear_ids = []
    for r in rows:
        row = {
            "day": d.isoformat(),
            "account_id": int(r["account_id"]),
            "account_name": r["account_name"],
            "grid_code": r["grid_code"],
            "patrols": int(r["patrols"]),
            "seconds_in_grid": float(r["seconds_in_grid"]),
            "length_m": float(r["length_m"]),
            "buildings_visited": int(r["buildings_visited"]),
            "coverage": cov.get((int(r["account_id"]), r["grid_code"]), 0.0),
        }
        if _clear(scope, {**row}):
            clear_ids.append(row["account_id"])
        else:
            row["account_name"] = mask_name(row["account_name"])
        out.append(row)
    audit.record_read(
        bind,
        scope,
        "patrol_metrics",
        sorted(set(clear_ids)),
        list(PATROL_PERSONAL),
        {"day": str(d)},
    )
    return out
