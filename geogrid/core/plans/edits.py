"""Pure topology edits on the grid coverage of a plan's communities.

A :class:`Coverage` holds the communities of a plan and the grids that partition them
(EPSG:4326, lon/lat degrees). Every edit returns a *new* coverage (the input is never
changed) together with an :class:`EditResult` naming the grids it touched, and is
validated at once: an edit that would break the partition raises
:class:`~geogrid.errors.TopologyError` with its findings, and nothing changes.

How neighbours stay snapped
---------------------------
Edits never overlay two grids independently. The community being edited is rebuilt from
its *linework*: the boundaries of the (new, approximate) grid pieces, the community
boundary and the edit's line are noded together on a fixed precision grid
(``grid_size=1e-7`` degrees, ≈1 cm, the same as the demo build) with
``shapely.union_all``, polygonized into faces, each face is labelled with the grid that
owns its interior point, and each grid is the ``coverage_union`` of its faces. Two
neighbours therefore share every vertex of their common edge, exactly, and no sliver
from floating-point drift can appear. After each edit the community's grids are checked
with ``shapely.coverage_is_valid`` and :func:`geogrid.core.validation.validate_units` (no
gap, overlap, sliver, grid outside its community), and an edited grid must stay in one
piece (contiguity).

Noding is done in floating precision, not snap-rounded to ``GRID_SIZE``: snap rounding
moves a node where a new line meets an existing edge by up to half a precision cell,
which bends the (fixed) community boundary and leaves ~1 m² slivers against the
neighbouring community. In floating precision a new node lies on both segments to
~1e-15 degrees. Edits work inside the union of the community's current grids
(:meth:`Coverage.extent`), so the outer boundary of the community's grids never moves;
where an edit's line meets it, the grid on this side gets a vertex that the neighbouring
community's grid does not have (it lies on that grid's edge to ~1e-15 degrees).

Snapping
--------
A line drawn by hand misses the vertex it aims at by a little. ``split`` and ``move_edge``
take ``snap_m`` (metres, default 0: none; the API sends 1 m): before noding, each vertex
of the line within ``snap_m`` of a vertex of the community's grids (or of their outer
boundary) is moved *exactly* onto that vertex, and a vertex within ``snap_m`` of an edge
onto the nearest point of the edge (:func:`snap_line`), so a line meant to end on a
corner ends on it and leaves no sliver. Distances are measured in metres with the local
scale of the degrees (equirectangular at the line's latitude; exact enough within a few
metres).

Edit kinds (``apply_edit(coverage, kind, params)``; geometries are GeoJSON dicts or WKT
strings in WGS84)

``split``     ``{"code", "line", "new_code"?, "new_name"?, "snap_m"?}``: cut a grid by a line that
              crosses it; the largest piece keeps the code, the others get new codes.
``merge``     ``{"codes": [...], "code"?, "name"?}``: merge adjacent grids into one (it
              keeps ``code``, default the first of ``codes``).
``move_edge`` ``{"a", "b", "line", "snap_m"?}``: redraw the boundary between two neighbours: their
              union is cut by ``line`` and each piece goes to the grid it overlapped most.
``reassign``  ``{"polygon", "to", "from"?}``: move the part of ``from`` (default: the
              grid the polygon overlaps most, other than ``to``) inside ``polygon`` to
              the neighbour ``to``.
``rename``    ``{"code", "new_code"?, "new_name"?}``: rename and/or recode a grid.
``replace``   ``{"community", "grids": [{"code", "name", "geometry"}]}``: replace all
              grids of a community.
``autopartition`` ``{"result": [{"community", "grids": [...]}], ...}``: what
              :func:`geogrid.core.plans.partition.autopartition` computed, stored with its
              inputs; replayed as ``replace`` per community (replay never re-runs METIS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geogrid.core.validation import validate_units
from geogrid.errors import GeogridError, InvalidInput, TopologyError

__all__ = [
    "GRID_SIZE",
    "EDIT_KINDS",
    "Coverage",
    "EditResult",
    "apply_edit",
    "check_community",
    "coverage_change",
    "parse_geometry",
    "rebuild_community",
    "snap_line",
]

GRID_SIZE = 1e-7
"""Precision grid of every overlay and of the noding, degrees (≈1 cm at 23°N)."""

EDIT_KINDS = ("split", "merge", "move_edge", "reassign", "rename", "replace", "autopartition")

_OVERSHOOT = 1e-9  # degrees (~0.1 mm) a clipped line reaches past the region it cuts
_DEG2_TO_M2 = 111_320.0 * 110_574.0 * np.cos(np.radians(22.6))  # rough, for tiny faces only
_ABSORB_M2 = 1.0  # unlabelled faces smaller than this go to their longest-edge neighbour


# --------------------------------------------------------------------------- data


@dataclass
class Coverage:
    """Communities of a plan and the grids partitioning them (EPSG:4326).

    Attributes
    ----------
    communities : GeoDataFrame
        ``code``, ``name``, ``parent_code`` and ``geometry`` of each community of the plan
        (plus whatever unit columns the caller keeps, e.g. ``households``).
    grids : GeoDataFrame
        ``code``, ``name``, ``parent_code`` (the community) and ``geometry``
        (MultiPolygon), one row per grid, default RangeIndex.
    reserved : frozenset of str
        Codes that new grids must not take (the base version's grid codes of these
        communities, so a new grid never inherits the history of a removed one).
    """

    communities: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    reserved: frozenset[str] = field(default_factory=frozenset)

    def copy(self) -> Coverage:
        return Coverage(self.communities, self.grids.copy(), self.reserved)

    def community_of(self, code: str) -> str:
        row = self.grids.index[self.grids["code"] == code]
        if len(row) == 0:
            raise InvalidInput("code", code, f"a grid code of this plan ({self._some_codes()})")
        return str(self.grids.at[row[0], "parent_code"])

    def community_geom(self, community: str) -> BaseGeometry:
        row = self.communities.index[self.communities["code"] == community]
        if len(row) == 0:
            raise InvalidInput("community", community, "a community code of this plan")
        return self.communities.geometry.iloc[self.communities.index.get_loc(row[0])]

    def extent(self, community: str) -> BaseGeometry:
        """The union of the community's grids: the region edits redistribute.

        Edits and re-cuts work inside this region, not inside the community polygon, so
        the outer boundary of the community's grids never moves by a hair even where the
        stored community polygon and its grids differ by rounding (≈1 cm in the demo);
        the grids then still meet the neighbouring community's grids exactly.
        """
        geoms = np.asarray(self.grids_of(community).geometry.array, dtype=object)
        if len(geoms) == 0:
            return self.community_geom(community)
        if bool(shapely.coverage_is_valid(geoms)):
            return shapely.coverage_union_all(geoms)
        return shapely.union_all(geoms)

    def grids_of(self, community: str) -> gpd.GeoDataFrame:
        return self.grids[self.grids["parent_code"] == community]

    def next_codes(self, community: str, n: int) -> list[str]:
        """``n`` unused grid codes (community code + 3 digits) after the highest in use."""
        used = set(self.grids["code"]) | set(self.reserved)
        suffixes = [
            int(c[len(community) :])
            for c in used
            if c.startswith(community) and c[len(community) :].isdigit()
        ]
        start = max(suffixes, default=0) + 1
        if start + n - 1 > 999:
            raise InvalidInput("community", community, "a community with fewer than 999 grids")
        return [f"{community}{start + i:03d}" for i in range(n)]

    def _some_codes(self) -> str:
        codes = self.grids["code"].tolist()
        return ", ".join(codes[:5]) + (" …" if len(codes) > 5 else "")


@dataclass
class EditResult:
    """What one edit changed.

    Attributes
    ----------
    community : str
        The community edited.
    removed : list of str
        Grid codes that no longer exist.
    added : list of str
        Grid codes that are new.
    modified : list of str
        Grid codes kept whose geometry or name changed.
    """

    community: str
    removed: list[str]
    added: list[str]
    modified: list[str]

    @property
    def touched_before(self) -> list[str]:
        return sorted(set(self.removed) | set(self.modified))

    @property
    def touched_after(self) -> list[str]:
        return sorted(set(self.added) | set(self.modified))


def coverage_change(old: Coverage, new: Coverage) -> EditResult:
    """What differs between two coverages: grid codes removed, added, and kept with another
    name or geometry (exact comparison). ``community`` is empty.

    >>> import shapely
    >>> cov = Coverage(
    ...     gpd.GeoDataFrame({"code": ["c"]}, geometry=[shapely.box(0, 0, 2, 1)], crs=4326),
    ...     gpd.GeoDataFrame(
    ...         {"code": ["c001", "c002"], "name": ["a", "b"], "parent_code": ["c", "c"]},
    ...         geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
    ...         crs=4326,
    ...     ),
    ... )
    >>> after, _ = apply_edit(cov, "rename", {"code": "c002", "new_name": "B"})
    >>> coverage_change(cov, after)
    EditResult(community='', removed=[], added=[], modified=['c002'])
    """
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


# --------------------------------------------------------------------------- parsing


def parse_geometry(value: Any, parameter: str) -> BaseGeometry:
    """A GeoJSON geometry dict/str, WKT string or shapely geometry (WGS84) → shapely."""
    if isinstance(value, BaseGeometry):
        return value
    try:
        if isinstance(value, Mapping):
            return shapely.from_geojson(json.dumps(dict(value)))
        if isinstance(value, str):
            s = value.strip()
            return shapely.from_geojson(s) if s.startswith("{") else shapely.from_wkt(s)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's input
        raise InvalidInput(parameter, _short(value), "a GeoJSON geometry or WKT (WGS84)") from exc
    raise InvalidInput(parameter, _short(value), "a GeoJSON geometry or WKT (WGS84)")


def _short(v: Any) -> str:
    s = str(v)
    return s if len(s) < 120 else s[:120] + "…"


def _param(params: Mapping[str, Any], name: str, kind: str) -> Any:
    if name not in params or params[name] in (None, ""):
        raise InvalidInput(f"params.{name}", None, f"a value (required by the {kind} edit)")
    return params[name]


# --------------------------------------------------------------------------- snapping

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQ = 111_320.0
_END_REACH_M = 0.001  # how far past an edge a line end snapped onto it reaches, metres


def _metric_scale(lat: float) -> np.ndarray:
    """Metres per degree of (lon, lat) at latitude ``lat`` (equirectangular)."""
    return np.array([_M_PER_DEG_LON_EQ * np.cos(np.radians(lat)), _M_PER_DEG_LAT])


def snap_line(
    line: BaseGeometry, targets: list[BaseGeometry] | np.ndarray, tolerance_m: float
) -> BaseGeometry:
    """``line`` (WGS84) with each vertex within ``tolerance_m`` metres of a vertex of
    ``targets`` moved exactly onto it, else within ``tolerance_m`` of an edge of
    ``targets`` moved onto the edge's nearest point.

    >>> sq = shapely.box(110.0, 22.0, 110.01, 22.01)
    >>> east, north = 0.4 / 103_200.0, 0.4 / 110_574.0  # 0.4 m each way: 0.57 m off
    >>> line = shapely.LineString([(110.0 + east, 22.0 + north), (110.01, 22.01)])
    >>> snap_line(line, [sq], 1.0).coords[0]
    (110.0, 22.0)
    >>> snap_line(line, [sq], 0.1).coords[0] == line.coords[0]
    True
    """
    if tolerance_m is None or tolerance_m <= 0 or line.is_empty:
        return line
    lines = [
        shapely.boundary(g) if g.geom_type in ("Polygon", "MultiPolygon") else g for g in targets
    ]
    lines = [g for g in lines if g is not None and not g.is_empty]
    if not lines:
        return line
    scale = _metric_scale(float(shapely.get_coordinates(line)[:, 1].mean()))
    verts = np.unique(np.concatenate([shapely.get_coordinates(g) for g in lines]), axis=0)
    verts_m = verts * scale
    edges_m = shapely.transform(
        shapely.union_all(np.asarray(lines, dtype=object)), lambda c: c * scale
    )

    def snap(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        on_edge = np.zeros(len(coords), dtype=bool)
        for i, xy in enumerate(coords):
            d = np.hypot(*(verts_m - xy * scale).T)
            j = int(np.argmin(d))
            if d[j] <= tolerance_m:
                out[i] = verts[j]
                continue
            p = shapely.Point(xy * scale)
            if shapely.distance(edges_m, p) <= tolerance_m:
                q = shapely.line_interpolate_point(edges_m, shapely.line_locate_point(edges_m, p))
                out[i] = np.asarray(shapely.get_coordinates(q)[0]) / scale
                on_edge[i] = True
        # an end put on an edge reaches ~1 mm past it, so that noding meets the edge for
        # sure (the dangle past it is clipped or ignored by polygonize)
        for end, nxt in ((0, 1), (len(out) - 1, len(out) - 2)):
            if len(out) > 1 and on_edge[end]:
                v = out[end] - out[nxt]
                n = float(np.hypot(*(v * scale)))
                if n > 0:
                    out[end] = out[end] + v * (_END_REACH_M / n)
        return out

    parts = [shapely.LineString(snap(shapely.get_coordinates(g))) for g in shapely.get_parts(line)]
    return parts[0] if line.geom_type == "LineString" else shapely.MultiLineString(parts)


def _snap_m(value: Any) -> float:
    """The ``snap_m`` parameter: a finite number of metres, 0 to 50."""
    if value is None:
        return 0.0
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("params.snap_m", value, "metres, 0 to 50") from None
    if not np.isfinite(v) or not 0 <= v <= 50:
        raise InvalidInput("params.snap_m", value, "metres, 0 to 50")
    return v


# --------------------------------------------------------------------------- engine


def _noded_faces(lines: list[BaseGeometry]) -> np.ndarray:
    """Node linework (floating precision: an intersection lies on both segments to
    ~1e-15 degrees) and polygonize it into faces."""
    lines = [g for g in lines if g is not None and not g.is_empty]
    noded = shapely.union_all(np.asarray(lines, dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces[~shapely.is_empty(faces)]


def community_faces(
    community: BaseGeometry,
    owners: list[BaseGeometry] | np.ndarray,
    extra_lines: list[BaseGeometry] | None = None,
    *,
    owner_lines: bool = True,
    absorb_m2: float = _ABSORB_M2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces of the community's noded linework, each labelled with its owner.

    The linework is the community boundary, the owners' boundaries (unless
    ``owner_lines`` is False) and ``extra_lines``. Returns ``(faces, rep_points,
    labels)``: faces inside the community, a point inside each, and the index of the
    owner containing it (the largest overlap for a face on an owner's edge; an unowned
    face smaller than ``absorb_m2`` goes to the neighbour sharing its longest edge; -1:
    a gap).
    """
    lines = [shapely.boundary(community)]
    if owner_lines:
        lines += [shapely.boundary(g) for g in owners if g is not None and not g.is_empty]
    lines += list(extra_lines or [])
    faces = _noded_faces(lines)
    rp = shapely.point_on_surface(faces)
    shapely.prepare(community)
    inside = shapely.intersects(community, rp)
    faces, rp = faces[inside], rp[inside]
    return faces, rp, _label_faces(faces, rp, owners, absorb_m2)


def rebuild_community(
    community: BaseGeometry,
    owners: list[BaseGeometry],
    extra_lines: list[BaseGeometry] | None = None,
    *,
    absorb_m2: float = _ABSORB_M2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact coverage of a community from approximate pieces ``owners``.

    Returns ``(faces, labels, geoms)``: see :func:`community_faces`; ``geoms`` is the
    coverage union of the faces of each owner (MultiPolygon; empty when it got none).
    """
    faces, _, labels = community_faces(community, owners, extra_lines, absorb_m2=absorb_m2)
    return faces, labels, _dissolve(faces, labels, len(owners))


def _label_faces(faces: np.ndarray, rp: np.ndarray, owners, absorb_m2: float) -> np.ndarray:
    arr = np.asarray(list(owners), dtype=object)
    labels = np.full(len(faces), -1, dtype=np.int64)
    if len(arr) == 0 or len(faces) == 0:
        return labels
    tree = shapely.STRtree(arr)
    fi, oi = tree.query(rp, predicate="within")
    once = np.bincount(fi, minlength=len(faces)) == 1
    sel = once[fi]
    labels[fi[sel]] = oi[sel]
    todo = np.flatnonzero(labels < 0)
    if len(todo):  # on an owner's edge, or in several owners: the largest overlap
        ti, tj = tree.query(faces[todo], predicate="intersects")
        if len(ti):
            ov = shapely.area(shapely.intersection(faces[todo[ti]], arr[tj]))
            o = np.lexsort((tj, -ov, ti))
            first = np.r_[True, ti[o][1:] != ti[o][:-1]] & (ov[o] > 0)
            labels[todo[ti[o][first]]] = tj[o][first]
    _absorb(faces, labels, absorb_m2)
    return labels


def _absorb(faces: np.ndarray, labels: np.ndarray, absorb_m2: float) -> None:
    """Small unlabelled faces (rounding debris) join the labelled neighbour sharing their
    longest edge (in place; repeated so debris next to debris is absorbed too)."""
    for _ in range(3):
        if not _absorb_once(faces, labels, absorb_m2):
            return


def _absorb_once(faces: np.ndarray, labels: np.ndarray, absorb_m2: float) -> bool:
    changed = False
    for i in np.flatnonzero(labels < 0):
        if shapely.area(faces[i]) * _DEG2_TO_M2 >= absorb_m2:
            continue
        shared = shapely.length(
            shapely.intersection(shapely.boundary(faces[i]), shapely.boundary(faces))
        )
        shared[i] = 0
        shared[labels < 0] = 0
        if shared.max() > 0:
            labels[i] = labels[int(np.argmax(shared))]
            changed = True
    return changed


def _dissolve(faces: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for k in range(n):
        mine = faces[labels == k]
        if len(mine) == 0:
            out[k] = shapely.MultiPolygon()
            continue
        g = mine[0] if len(mine) == 1 else shapely.coverage_union_all(mine)
        out[k] = _as_multi(g)
    return out


def _as_multi(g: BaseGeometry) -> shapely.MultiPolygon:
    if g.geom_type == "MultiPolygon":
        return g
    if g.geom_type == "Polygon":
        return shapely.MultiPolygon([g])
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
    return shapely.MultiPolygon(parts)


def _clip(line: BaseGeometry, region: BaseGeometry) -> BaseGeometry:
    """``line`` inside ``region``, reaching ~0.1 mm past its boundary so that noding
    meets the boundary for sure (an end computed *on* the boundary may fall 1e-16
    short and dangle); the overshoot is a dangle polygonize ignores."""
    return shapely.intersection(line, shapely.buffer(region, _OVERSHOOT, quad_segs=2))


def _pieces(region: BaseGeometry, line: BaseGeometry) -> np.ndarray:
    """Faces of ``region`` cut by ``line``."""
    cut = _clip(line, region)
    faces = _noded_faces([shapely.boundary(region), cut])
    rp = shapely.point_on_surface(faces)
    shapely.prepare(region)
    return faces[shapely.contains(region, rp)]


# --------------------------------------------------------------------------- checks


def _finding(
    kind: str, codes: list[str], message: str, where: BaseGeometry | None = None
) -> dict[str, Any]:
    loc = None if where is None else json.loads(shapely.to_geojson(where))
    return {
        "kind": kind,
        "level": "grid",
        "codes": list(codes),
        "location": loc,
        "area_m2": 0.0,
        "message": message,
    }


def check_community(
    cov: Coverage, community: str, *, contiguous: list[str] | None = None
) -> list[Any]:
    """Findings of one community's grids: coverage validity, gaps, overlaps, slivers,
    grids outside the community (geogrid.core.validation), and the contiguity of the grids in
    ``contiguous``. Empty when the community is exactly partitioned."""
    grids = cov.grids_of(community)
    comm = cov.communities[cov.communities["code"] == community]
    findings: list[Any] = []
    geoms = np.asarray(grids.geometry.array, dtype=object)
    empty = shapely.is_empty(geoms)
    for code in grids["code"].to_numpy()[empty]:
        findings.append(_finding("empty_geometry", [code], f"grid {code} would be empty"))
    if len(findings):
        return findings
    if not bool(shapely.coverage_is_valid(geoms)):
        bad = shapely.coverage_invalid_edges(geoms)
        for code, e in zip(grids["code"], bad, strict=True):
            if e is not None and not e.is_empty:
                findings.append(
                    _finding(
                        "invalid_coverage",
                        [code],
                        f"edges of {code} do not match its neighbours",
                        e,
                    )
                )
    findings.extend(validate_units(grids, level="grid", parents=comm[["code", "geometry"]]))
    for code in contiguous or []:
        g = grids.geometry[grids["code"] == code]
        if len(g) and shapely.get_num_geometries(g.iloc[0]) > 1:
            findings.append(
                _finding(
                    "not_contiguous",
                    [code],
                    f"grid {code} would be in {shapely.get_num_geometries(g.iloc[0])} separate "
                    "parts",
                    g.iloc[0],
                )
            )
    return findings


def _commit(
    cov: Coverage,
    community: str,
    rows: list[dict],
    result: EditResult,
    contiguous: list[str],
    kind: str,
) -> tuple[Coverage, EditResult]:
    """Replace the community's grids by ``rows`` (code, name, geometry), validate."""
    others = cov.grids[cov.grids["parent_code"] != community]
    new = gpd.GeoDataFrame(
        {
            "code": [r["code"] for r in rows],
            "name": [r["name"] for r in rows],
            "parent_code": community,
        },
        geometry=[r["geometry"] for r in rows],
        crs="EPSG:4326",
    )
    grids = pd.concat([others, new], ignore_index=True)
    grids = grids.sort_values("code", kind="stable").reset_index(drop=True)
    out = Coverage(
        cov.communities, gpd.GeoDataFrame(grids, geometry="geometry", crs="EPSG:4326"), cov.reserved
    )
    findings = check_community(out, community, contiguous=contiguous)
    if findings:
        first = findings[0]
        msg = first.message if hasattr(first, "message") else first["message"]
        raise TopologyError(
            f"{kind} refused: it would break the partition of community {community} "
            f"({len(findings)} finding(s); first: {msg})",
            findings,
        )
    return out, result


class _Faces:
    """The community's grids and the faces of its noded linework (+ an edit's lines)."""

    def __init__(self, cov: Coverage, community: str, extra_lines=None):
        self.cov = cov
        self.community = community
        grids = cov.grids_of(community)
        self.codes = grids["code"].tolist()
        self.names = grids["name"].astype(str).tolist()
        self.geoms = np.asarray(grids.geometry.array, dtype=object)
        self.faces, self.rp, self.labels = community_faces(
            cov.extent(community), self.geoms, extra_lines
        )

    def index(self, code: str) -> int:
        return self.codes.index(code)

    def add(self, code: str, name: str) -> int:
        self.codes.append(code)
        self.names.append(name)
        return len(self.codes) - 1

    def commit(
        self, result: EditResult, contiguous: list[str], kind: str
    ) -> tuple[Coverage, EditResult]:
        geoms = _dissolve(self.faces, self.labels, len(self.codes))
        removed = set(result.removed)
        rows = [
            {"code": c, "name": n, "geometry": g}
            for c, n, g in zip(self.codes, self.names, geoms, strict=True)
            if c not in removed
        ]
        return _commit(self.cov, self.community, rows, result, contiguous, kind)


# --------------------------------------------------------------------------- edits


def split(
    cov: Coverage,
    code: str,
    line: Any,
    *,
    new_code: str | None = None,
    new_name: str | None = None,
    snap_m: float = 0.0,
) -> tuple[Coverage, EditResult]:
    """Cut grid ``code`` by a line (WGS84) crossing it from boundary to boundary (its
    vertices snapped to the community's grids within ``snap_m`` metres)."""
    community = cov.community_of(code)
    line = parse_geometry(line, "params.line")
    if line.geom_type not in ("LineString", "MultiLineString"):
        raise InvalidInput("params.line", line.geom_type, "a LineString")
    line = _snap_to_community(cov, community, line, snap_m)
    target = cov.grids.geometry[cov.grids["code"] == code].iloc[0]
    f = _Faces(cov, community, [_clip(line, target)])
    k = f.index(code)
    mine = np.flatnonzero(f.labels == k)
    parts = shapely.get_parts(target)
    fi, pi = shapely.STRtree(parts).query(f.rp[mine], predicate="within")
    part_of = np.full(len(mine), -1)
    part_of[fi] = pi
    counts = np.bincount(part_of[part_of >= 0], minlength=len(parts))
    uncut = (part_of >= 0) & (counts[np.maximum(part_of, 0)] == 1)
    cut = mine[~uncut]
    if len(cut) < 2:
        raise TopologyError(
            f"split refused: the line does not cut grid {code} into two parts (it must "
            "cross the grid from one edge to another)",
            [_finding("no_cut", [code], f"the line does not cut grid {code}", line)],
        )
    cut = cut[np.argsort(-shapely.area(f.faces[cut]), kind="stable")]
    extra = len(cut) - 1
    if new_code is not None:
        if extra != 1:
            raise InvalidInput(
                "params.new_code",
                new_code,
                f"no new_code: the line cuts {code} into {len(cut)} pieces",
            )
        _check_new_code(cov, community, new_code)
        codes = [new_code]
    else:
        codes = cov.next_codes(community, extra)
    name = f.names[k]
    names = [new_name] if (new_name and extra == 1) else [f"{name}-{j + 2}" for j in range(extra)]
    for face, c, n in zip(cut[1:], codes, names, strict=True):
        f.labels[face] = f.add(c, n)
    return f.commit(EditResult(community, [], codes, [code]), [code, *codes], "split")


def merge(
    cov: Coverage, codes: list[str], *, code: str | None = None, name: str | None = None
) -> tuple[Coverage, EditResult]:
    """Merge adjacent grids of one community into one grid."""
    codes = [str(c) for c in codes]
    if len(set(codes)) < 2:
        raise InvalidInput("params.codes", codes, "two or more distinct grid codes")
    communities = {cov.community_of(c) for c in codes}
    if len(communities) > 1:
        raise TopologyError(
            f"merge refused: grids {codes} are in different communities "
            f"{sorted(communities)}; a grid stays inside one community"
        )
    community = communities.pop()
    keep = str(code or codes[0])
    if keep not in codes:
        raise InvalidInput("params.code", keep, f"one of the merged codes {codes}")
    grids = cov.grids_of(community)
    _require_adjacent(grids[grids["code"].isin(codes)])
    f = _Faces(cov, community)
    k = f.index(keep)
    for c in codes:
        f.labels[f.labels == f.index(c)] = k
    if name:
        f.names[k] = str(name)
    res = EditResult(community, [c for c in codes if c != keep], [], [keep])
    return f.commit(res, [keep], "merge")


def _require_adjacent(sel: gpd.GeoDataFrame) -> None:
    geoms = np.asarray(sel.geometry.array, dtype=object)
    codes = sel["code"].tolist()
    n = len(geoms)
    seen, stack = {0}, [0]
    while stack:
        i = stack.pop()
        for j in range(n):
            if j in seen:
                continue
            shared = shapely.length(
                shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
            )
            if shared > 0:
                seen.add(j)
                stack.append(j)
    if len(seen) < n:
        lonely = [codes[j] for j in range(n) if j not in seen]
        raise TopologyError(
            f"merge refused: grids {lonely} share no edge with {codes[0]} (only adjacent "
            "grids can be merged)",
            [_finding("not_adjacent", lonely, "shares no edge with the other merged grids")],
        )


def _snap_to_community(
    cov: Coverage, community: str, line: BaseGeometry, snap_m: float
) -> BaseGeometry:
    if snap_m <= 0:
        return line
    geoms = list(cov.grids_of(community).geometry.array) + [cov.extent(community)]
    return snap_line(line, geoms, snap_m)


def move_edge(
    cov: Coverage, a: str, b: str, line: Any, *, snap_m: float = 0.0
) -> tuple[Coverage, EditResult]:
    """Redraw the shared boundary of neighbours ``a`` and ``b`` as ``line`` (its vertices
    snapped to the community's grids within ``snap_m`` metres)."""
    community = cov.community_of(a)
    if cov.community_of(b) != community:
        raise TopologyError(f"move_edge refused: {a} and {b} are in different communities")
    if a == b:
        raise InvalidInput("params.b", b, f"a grid other than {a}")
    line = _snap_to_community(cov, community, parse_geometry(line, "params.line"), snap_m)
    grids = cov.grids_of(community)
    _require_adjacent(grids[grids["code"].isin([a, b])])
    ga = grids.geometry[grids["code"] == a].iloc[0]
    gb = grids.geometry[grids["code"] == b].iloc[0]
    union = shapely.coverage_union_all(np.asarray([ga, gb], dtype=object))
    pieces = _pieces(union, line)
    if len(pieces) < 2:
        raise TopologyError(
            f"move_edge refused: the line does not cross the union of {a} and {b} from "
            "boundary to boundary",
            [_finding("no_cut", [a, b], "the line does not cut the two grids", line)],
        )
    to_a = shapely.area(shapely.intersection(pieces, ga)) >= shapely.area(
        shapely.intersection(pieces, gb)
    )
    if to_a.all() or (~to_a).all():
        gone = b if to_a.all() else a
        raise TopologyError(
            f"move_edge refused: the new line would leave nothing of {gone}",
            [_finding("empty_geometry", [gone], f"grid {gone} would be empty")],
        )
    f = _Faces(cov, community, [_clip(line, union)])
    ia, ib = f.index(a), f.index(b)
    mine = np.flatnonzero((f.labels == ia) | (f.labels == ib))
    fi, pi = shapely.STRtree(pieces).query(f.rp[mine], predicate="within")
    f.labels[mine[fi]] = np.where(to_a[pi], ia, ib)
    return f.commit(EditResult(community, [], [], sorted([a, b])), [a, b], "move_edge")


def reassign(
    cov: Coverage, polygon: Any, to: str, from_: str | None = None
) -> tuple[Coverage, EditResult]:
    """Give the part of grid ``from_`` inside ``polygon`` to its neighbour ``to``."""
    community = cov.community_of(to)
    poly = parse_geometry(polygon, "params.polygon")
    if poly.geom_type not in ("Polygon", "MultiPolygon") or not poly.is_valid:
        raise InvalidInput("params.polygon", poly.geom_type, "a valid Polygon")
    grids = cov.grids_of(community)
    if from_ is None:
        others = grids[grids["code"] != to]
        ov = shapely.area(shapely.intersection(np.asarray(others.geometry.array), poly))
        if not len(ov) or ov.max() <= 0:
            raise TopologyError(f"reassign refused: the polygon covers no grid next to {to}")
        from_ = str(others["code"].iloc[int(np.argmax(ov))])
    elif cov.community_of(from_) != community:
        raise TopologyError(
            f"reassign refused: {from_} and {to} are in different "
            "communities; a grid stays inside one community"
        )
    if from_ == to:
        raise InvalidInput("params.from", from_, f"a grid other than {to}")
    gf = grids.geometry[grids["code"] == from_].iloc[0]
    if shapely.area(shapely.intersection(gf, poly)) <= 0:
        raise TopologyError(
            f"reassign refused: the polygon does not overlap grid {from_}",
            [_finding("no_overlap", [from_], "no area to move", poly)],
        )
    f = _Faces(cov, community, [_clip(shapely.boundary(poly), gf)])
    shapely.prepare(poly)
    moved = (f.labels == f.index(from_)) & shapely.contains(poly, f.rp)
    f.labels[moved] = f.index(to)
    res = EditResult(community, [], [], sorted([from_, to]))
    return f.commit(res, [from_, to], "reassign")


def _check_new_code(cov: Coverage, community: str, new_code: str) -> None:
    if not re.fullmatch(rf"{re.escape(community)}\d{{3}}", new_code):
        raise InvalidInput(
            "params.new_code", new_code, f"the community code {community} followed by 3 digits"
        )
    if new_code in set(cov.grids["code"]):
        raise InvalidInput("params.new_code", new_code, "a code not used by another grid")


def rename(
    cov: Coverage, code: str, *, new_code: str | None = None, new_name: str | None = None
) -> tuple[Coverage, EditResult]:
    """Rename and/or recode a grid (geometry unchanged)."""
    community = cov.community_of(code)
    if not new_code and not new_name:
        raise InvalidInput("params", "{}", "new_code and/or new_name")
    grids = cov.grids.copy()
    i = grids.index[grids["code"] == code][0]
    if new_code and new_code != code:
        _check_new_code(cov, community, new_code)
        grids.at[i, "code"] = new_code
    if new_name:
        grids.at[i, "name"] = str(new_name)
    grids = grids.sort_values("code", kind="stable").reset_index(drop=True)
    out = Coverage(cov.communities, grids, cov.reserved)
    if new_code and new_code != code:
        return out, EditResult(community, [code], [new_code], [])
    return out, EditResult(community, [], [], [code])


def replace(
    cov: Coverage, community: str, grids: list[Mapping[str, Any]]
) -> tuple[Coverage, EditResult]:
    """Replace every grid of ``community`` (e.g. by an auto-partition)."""
    cov.community_geom(community)
    if not grids:
        raise InvalidInput("params.grids", [], "at least one grid")
    owners = []
    for k, g in enumerate(grids):
        code = str(_param(g, "code", "replace"))
        if not re.fullmatch(rf"{re.escape(community)}\d{{3}}", code):
            raise InvalidInput(
                f"params.grids[{k}].code",
                code,
                f"the community code {community} followed by 3 digits",
            )
        owners.append(
            (
                code,
                str(g.get("name") or code),
                parse_geometry(_param(g, "geometry", "replace"), "geometry"),
            )
        )
    if len({o[0] for o in owners}) < len(owners):
        raise InvalidInput("params.grids", [o[0] for o in owners], "distinct codes")
    before = set(cov.grids_of(community)["code"])
    after = {o[0] for o in owners}
    geoms = rebuild_community(cov.extent(community), [o[2] for o in owners])[2]
    rows = [
        {"code": c, "name": n, "geometry": g} for (c, n, _), g in zip(owners, geoms, strict=True)
    ]
    res = EditResult(
        community, sorted(before - after), sorted(after - before), sorted(before & after)
    )
    return _commit(cov, community, rows, res, sorted(after), "replace")


def apply_edit(cov: Coverage, kind: str, params: Mapping[str, Any]) -> tuple[Coverage, EditResult]:
    """Apply one edit (see the module docstring for kinds and params); validated.

    Parameters of the wrong type (a number where a list or a geometry is expected …) are
    refused as :class:`InvalidInput` naming ``params``, never as an internal error."""
    if kind not in EDIT_KINDS:
        raise InvalidInput("kind", kind, ", ".join(EDIT_KINDS))
    if params is not None and not isinstance(params, Mapping):
        raise InvalidInput("params", params, f"an object with the parameters of a {kind!r} edit")
    try:
        return _apply_edit(cov, kind, dict(params or {}))
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        raise InvalidInput(
            "params",
            dict(params or {}),
            f"the parameters of a {kind!r} edit (see geogrid.core.plans.edits): {exc}",
        ) from None
    except ValueError as exc:
        if isinstance(exc, GeogridError):
            raise
        raise InvalidInput(
            "params",
            dict(params or {}),
            f"the parameters of a {kind!r} edit (see geogrid.core.plans.edits): {exc}",
        ) from None


def _apply_edit(cov: Coverage, kind: str, p: dict[str, Any]) -> tuple[Coverage, EditResult]:
    if kind == "split":
        return split(
            cov,
            str(_param(p, "code", kind)),
            _param(p, "line", kind),
            new_code=p.get("new_code"),
            new_name=p.get("new_name"),
            snap_m=_snap_m(p.get("snap_m")),
        )
    if kind == "merge":
        codes = _param(p, "codes", kind)
        if not isinstance(codes, (list, tuple)):
            raise InvalidInput("params.codes", codes, "a list of grid codes")
        return merge(cov, list(codes), code=p.get("code"), name=p.get("name"))
    if kind == "move_edge":
        return move_edge(
            cov,
            str(_param(p, "a", kind)),
            str(_param(p, "b", kind)),
            _param(p, "line", kind),
            snap_m=_snap_m(p.get("snap_m")),
        )
    if kind == "reassign":
        return reassign(cov, _param(p, "polygon", kind), str(_param(p, "to", kind)), p.get("from"))
    if kind == "rename":
        return rename(
            cov,
            str(_param(p, "code", kind)),
            new_code=p.get("new_code"),
            new_name=p.get("new_name"),
        )
    if kind == "replace":
        return replace(cov, str(_param(p, "community", kind)), list(_param(p, "grids", kind)))
    if kind == "autopartition":
        results = list(_param(p, "result", kind))
        out, removed, added, modified = cov, [], [], []
        for r in results:
            out, res = replace(
                out, str(_param(r, "community", kind)), list(_param(r, "grids", kind))
            )
            removed += res.removed
            added += res.added
            modified += res.modified
        return out, EditResult(
            ",".join(str(r["community"]) for r in results), removed, added, modified
        )
    raise InvalidInput("kind", kind, ", ".join(EDIT_KINDS))
