"""The ``map_change`` log: which map area changed, written in the edit's transaction.

Every edit that changes what a map shows (incident import/creation/status change, a
boundary publish) calls :func:`record_change` (or :func:`record_incident_change`) on the
*same connection and transaction* as the edit, so a change row exists exactly when the
edit committed. Tile servers read new rows with :func:`changes_since` (a cheap
``id > last`` index scan) and invalidate the cached tiles whose bounds intersect ``bbox``.

``bbox`` is a WGS84 (EPSG:4326) polygon; NULL means "everywhere" (e.g. a change whose
extent is unknown). ``layer`` is a tile layer name (``incidents``, ``districts``,
``streets``, ``communities``, ``grids``) or ``boundaries`` (all boundary layers);
dependent layers (metrics, heat map) are derived by the reader
(:data:`geogrid.core.tiles.DEPENDENT_LAYERS`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geogrid.errors import InvalidInput

__all__ = [
    "Change",
    "record_change",
    "record_incident_change",
    "record_units_change",
    "changes_since",
    "unit_extents",
    "unit_extents_many",
    "unit_boxes",
]


@dataclass(frozen=True)
class Change:
    """One ``map_change`` row: what changed (``layer``), where (``bbox``, WGS84 west,
    south, east, north; None = everywhere), when (``at``, aware UTC) and why (``kind``)."""

    id: int
    at: datetime
    layer: str
    bbox: tuple[float, float, float, float] | None  # WGS84 west, south, east, north
    kind: str


def _bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InvalidInput("bbox", bbox, "(west, south, east, north) in WGS84 degrees") from None
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w > e or s > n:
        raise InvalidInput("bbox", bbox, "finite west <= east, south <= north (WGS84)")
    return w, s, e, n


def record_change(
    conn: Connection,
    layers: str | Iterable[str],
    bbox: Sequence[float] | None,
    kind: str,
) -> list[int]:
    """Insert one ``map_change`` row per layer (in the caller's transaction).

    Parameters
    ----------
    conn : the connection of the edit (its transaction is used; nothing is committed here)
    layers : layer name(s), e.g. ``"incidents"`` or ``["grids", "communities"]``
    bbox : (west, south, east, north) WGS84 degrees of what changed, or None (everywhere).
        A point or a line is fine: the polygon is padded by 1e-7° when degenerate.
    kind : a short word for logs (``import``, ``create``, ``status``, ``publish``…)

    Returns the ids of the rows. A ``NOTIFY map_change`` is sent on commit as well.
    """
    b = _bbox(bbox)
    names = [layers] if isinstance(layers, str) else list(layers)
    ids = []
    params: dict[str, Any]
    for layer in names:
        if b is None:
            sql = "INSERT INTO map_change (layer, bbox, kind) VALUES (:l, NULL, :k) RETURNING id"
            params = {"l": layer, "k": kind}
        else:
            w, s, e, n = b
            if e - w < 1e-7:
                w, e = w - 1e-7, e + 1e-7
            if n - s < 1e-7:
                s, n = s - 1e-7, n + 1e-7
            sql = (
                "INSERT INTO map_change (layer, bbox, kind) VALUES "
                "(:l, ST_MakeEnvelope(:w, :s, :e, :n, 4326), :k) RETURNING id"
            )
            params = {"l": layer, "k": kind, "w": w, "s": s, "e": e, "n": n}
        ids.append(int(conn.execute(text(sql), params).scalar_one()))
    conn.execute(text("SELECT pg_notify('map_change', :p)"), {"p": ",".join(map(str, ids))})
    return ids


def record_incident_change(
    conn: Connection, lon: Iterable[float], lat: Iterable[float], kind: str = "incidents"
) -> list[int]:
    """Record the bbox of a batch of incident points (WGS84 lon/lat arrays), layer
    ``incidents`` (the heat map and the metric layers follow). Non-finite coordinates
    are ignored; an empty batch records nothing."""
    x = np.asarray(list(lon) if not hasattr(lon, "__array__") else lon, dtype=np.float64)
    y = np.asarray(list(lat) if not hasattr(lat, "__array__") else lat, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return []
    x, y = x[ok], y[ok]
    return record_change(
        conn, "incidents", (float(x.min()), float(y.min()), float(x.max()), float(y.max())), kind
    )


def record_units_change(
    conn: Connection,
    version_id: int,
    codes: Iterable[str] | None = None,
    kind: str = "publish",
    *,
    previous_version_id: int | None = None,
) -> list[int]:
    """Record a boundary change: the extent of the units ``codes`` (all units when None)
    of ``version_id`` and, if given, of ``previous_version_id`` (what disappeared), as
    layer ``boundaries``. Call it in the publish transaction."""
    vids = [v for v in (version_id, previous_version_id) if v is not None]
    cond = "version_id = ANY(:v)"
    params: dict = {"v": vids}
    if codes is not None:
        cond += " AND code = ANY(:codes)"
        params["codes"] = list(codes)
    row = conn.execute(
        text(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            f"(SELECT ST_Extent(geom) AS e FROM unit WHERE {cond}) s"
        ),
        params,
    ).one()
    if row[0] is None:
        return []
    return record_change(conn, "boundaries", tuple(row), kind)


def changes_since(conn: Connection, last_id: int | None) -> tuple[list[Change], int]:
    """Changes with ``id > last_id`` (oldest first) and the new high-water mark.
    ``last_id=None`` returns no rows, only the current mark."""
    if last_id is None:
        mark = conn.execute(text("SELECT coalesce(max(id), 0) FROM map_change")).scalar_one()
        return [], int(mark)
    rows = conn.execute(
        text(
            "SELECT id, at, layer, ST_XMin(bbox), ST_YMin(bbox), ST_XMax(bbox), "
            "ST_YMax(bbox), kind FROM map_change WHERE id > :last ORDER BY id LIMIT 10000"
        ),
        {"last": last_id},
    ).all()
    out = [
        Change(int(r[0]), r[1], r[2], None if r[3] is None else (r[3], r[4], r[5], r[6]), r[7])
        for r in rows
    ]
    return out, (out[-1].id if out else int(last_id))


def unit_extents(
    conn: Connection, level: str, bbox: Sequence[float]
) -> tuple[float, float, float, float] | None:
    """Extent (WGS84) of the published units of ``level`` that intersect ``bbox``: the
    area whose metric tiles a change of incidents inside ``bbox`` can alter."""
    b = _bbox(bbox)
    if b is None:
        raise InvalidInput("bbox", bbox, "(west, south, east, north) in WGS84 degrees")
    w, s, e, n = b
    row = conn.execute(
        text(
            "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT "
            "ST_Extent(u.geom) AS x FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            "WHERE v.status = 'published' AND u.level = :lv "
            "AND ST_Intersects(u.geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))) q"
        ),
        {"lv": level, "w": w, "s": s, "e": e, "n": n},
    ).one()
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def unit_extents_many(
    conn: Connection, levels: Sequence[str], bboxes: Sequence[Sequence[float]]
) -> dict[str, list[tuple[float, float, float, float]]]:
    """:func:`unit_extents` of several bboxes at several levels in one query (a batch of
    changes): per level, the distinct extents (none for a bbox no unit of the level meets).

    Units are matched by their bounding boxes (``&&``, the index alone), not their shapes:
    a few more tiles may be dropped, never fewer, and a district's polygon is not tested
    against every report (ST_Intersects cost ~7 ms a report here)."""
    boxes = [b for b in (_bbox(b) for b in bboxes) if b is not None]
    if len(boxes) != len(bboxes):
        raise InvalidInput("bbox", bboxes, "(west, south, east, north) in WGS84 degrees")
    out: dict[str, list[tuple[float, float, float, float]]] = {lv: [] for lv in levels}
    if not boxes or not levels:
        return out
    cols = list(zip(*boxes, strict=True))
    rows = conn.execute(
        text(
            "SELECT DISTINCT lv, ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT "
            "u.level AS lv, ST_Extent(u.geom) AS x FROM unnest(CAST(:w AS float8[]), "
            "CAST(:s AS float8[]), CAST(:e AS float8[]), CAST(:n AS float8[])) WITH ORDINALITY "
            "AS b(w, s, e, n, i) JOIN unit u ON u.geom && "
            "ST_MakeEnvelope(b.w, b.s, b.e, b.n, 4326) JOIN boundary_version v "
            "ON v.id = u.version_id WHERE v.status = 'published' "
            "AND u.level = ANY(CAST(:lv AS text[])) GROUP BY u.level, b.i) q"
        ),
        {
            "lv": list(levels),
            "w": list(cols[0]),
            "s": list(cols[1]),
            "e": list(cols[2]),
            "n": list(cols[3]),
        },
    ).all()
    for r in rows:
        if r[1] is not None:
            out[r[0]].append((float(r[1]), float(r[2]), float(r[3]), float(r[4])))
    return out


def unit_boxes(
    conn: Connection, levels: Sequence[str]
) -> list[tuple[str, float, float, float, float]]:
    """(level, west, south, east, north) of every published unit of ``levels``: the rows of
    :class:`geogrid.core.unit_boxes.UnitBoxes`, which answers :func:`unit_extents_many`
    in memory."""
    rows = conn.execute(
        text(
            "SELECT u.level, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM unit u "
            "JOIN boundary_version v ON v.id = u.version_id "
            "CROSS JOIN LATERAL Box2D(u.geom) AS b "
            "WHERE v.status = 'published' AND u.level = ANY(CAST(:lv AS text[]))"
        ),
        {"lv": list(levels)},
    ).all()
    return [(str(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in rows]
