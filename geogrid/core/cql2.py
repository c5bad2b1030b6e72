"""CQL2 filters (OGC API - Features Part 3) → a small, neutral filter expression.

:func:`parse_filter` reads a ``filter`` in CQL2 text or CQL2 JSON with ``pygeofilter``'s
parsers (the grammar is theirs, not ours) and turns pygeofilter's AST into the few
dataclasses below (:data:`Expr`), checking every property against the collection's
:class:`Queryable` s, every literal against the property's type and every geometry
against CRS84 bounds. :mod:`geogrid.store.features` turns an :data:`Expr` into
SQLAlchemy Core with bound parameters; the values never become SQL text, and property
names only pick columns from a fixed mapping, so nothing of the filter's text reaches SQL.

Why not pygeofilter's own SQLAlchemy backend: it maps AST nodes to ORM attributes
(``field_mapping``) and would put the CQL2 semantics (which names exist, what a temporal
predicate on an instant means, the CRS of a literal) into the store; it raises generic
errors rather than a 400 naming the property; its spatial literals are formatted into
EWKT text; and its CQL2-JSON ``bbox`` reading mixes up the corner order. Here the core
decides what a filter means (pure, testable without a database) and the store only
writes the SQL form.

What is supported (the conformance classes of :data:`CQL2_CONFORMANCE`):

* basic CQL2: ``=, <>, <, <=, >, >=``, ``AND/OR/NOT``, ``IS [NOT] NULL``, boolean literals;
* advanced comparison: ``LIKE`` (``%`` and ``_``), ``BETWEEN``, ``IN``;
* case-insensitive comparison: ``CASEI(prop) = CASEI('text')`` (and ``LIKE``);
* spatial: ``S_INTERSECTS``, ``S_DISJOINT``, ``S_WITHIN``, ``S_CONTAINS`` of the geometry
  property with a CRS84 ``BBOX``/``POINT``/``POLYGON``/… literal;
* time: comparisons of a date-time property with ``TIMESTAMP('…')``/``DATE('…')``, and in
  CQL2 JSON ``t_after``, ``t_before``, ``t_intersects``, ``t_equals``, ``t_during``,
  ``t_disjoint`` with an instant or an interval (reduced to comparisons: the properties are
  instants). pygeofilter 0.4's CQL2-text grammar does not parse the function form
  ``T_AFTER(a, b)`` (it has an infix form), so the temporal-functions class is not declared.

Not supported (400 naming what was found): functions other than ``CASEI``/``LOWER``,
arithmetic, property-to-property comparisons, array predicates, other filter CRSs.

>>> q = {"grid_code": Queryable("grid_code", "string")}
>>> parse_filter("grid_code = '450902001001001'", "cql2-text", q)
Compare(prop='grid_code', op='=', value='450902001001001', nocase=False)
>>> parse_filter("colour = 'red'", "cql2-text", q)
Traceback (most recent call last):
...
geogrid.errors.InvalidInput: filter: unknown property 'colour'; queryables: grid_code
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, Literal, NoReturn

import shapely
from pygeofilter import ast, values

from geogrid.errors import InvalidInput

__all__ = [
    "And",
    "Between",
    "Bool",
    "Compare",
    "CQL2_CONFORMANCE",
    "Expr",
    "FILTER_CRS",
    "FILTER_LANGS",
    "InList",
    "IsNull",
    "Like",
    "MAX_FILTER_LENGTH",
    "Not",
    "Or",
    "Queryable",
    "Spatial",
    "parse_filter",
    "prop_names",
]

#: filter languages accepted by ``filter-lang`` (the first is the default)
FILTER_LANGS: Final[tuple[str, ...]] = ("cql2-text", "cql2-json")
#: the one CRS of filter geometries (``filter-crs``); CRS84 is lon/lat
FILTER_CRS: Final[str] = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: longest filter accepted (characters): a filter is a query, not a data upload
MAX_FILTER_LENGTH: Final[int] = 20_000
#: deepest nesting of AND/OR/NOT accepted
MAX_DEPTH: Final[int] = 40
#: the CQL2 conformance classes this module implements
CQL2_CONFORMANCE: Final[tuple[str, ...]] = (
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
)

QType = Literal["string", "integer", "number", "boolean", "date-time", "geometry"]
Scalar = str | int | float | bool | datetime


@dataclass(frozen=True)
class Queryable:
    """A property a filter may name: its JSON Schema ``type`` (``date-time`` is a string
    of that format; ``geometry`` is the geometry property), optional ``enum`` and the
    geometry ``format`` (``geometry-point``…)."""

    name: str
    type: QType
    description: str = ""
    enum: tuple[str, ...] | None = None
    format: str | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the property (OGC API - Features Part 3, queryables).

        >>> Queryable("reported_at", "date-time").schema()
        {'title': 'reported_at', 'type': 'string', 'format': 'date-time'}
        >>> Queryable("geometry", "geometry", format="geometry-point").schema()["x-ogc-role"]
        'primary-geometry'
        """
        out: dict[str, Any] = {"title": self.name}
        if self.description:
            out["description"] = self.description
        if self.type == "geometry":
            out["format"] = self.format or "geometry-any"
            out["x-ogc-role"] = "primary-geometry"
        elif self.type == "date-time":
            out.update(type="string", format="date-time")
        else:
            out["type"] = self.type
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out


# ------------------------------------------------------------------ the neutral expression


@dataclass(frozen=True)
class Compare:
    """``prop op value`` (``op`` one of ``= <> < <= > >=``); ``nocase`` compares lower-case."""

    prop: str
    op: str
    value: Scalar
    nocase: bool = False


@dataclass(frozen=True)
class Like:
    """``prop LIKE pattern`` (SQL wildcards ``%``, ``_``; ``\\`` escapes)."""

    prop: str
    pattern: str
    nocase: bool = False
    negate: bool = False


@dataclass(frozen=True)
class InList:
    """``prop IN (values)``."""

    prop: str
    values: tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class Between:
    """``prop BETWEEN low AND high`` (inclusive)."""

    prop: str
    low: Scalar
    high: Scalar
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    """``prop IS [NOT] NULL``."""

    prop: str
    negate: bool = False


@dataclass(frozen=True)
class Spatial:
    """``op(prop, geometry)`` with ``op`` one of intersects/disjoint/within/contains and
    ``wkt`` a valid CRS84 geometry."""

    op: str
    prop: str
    wkt: str


@dataclass(frozen=True)
class Bool:
    """A constant: ``TRUE``/``INCLUDE`` or ``FALSE``/``EXCLUDE``."""

    value: bool


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Compare | Like | InList | Between | IsNull | Spatial | Bool | And | Or | Not

_COMPARE = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    "INTERSECTS": "intersects",
    "DISJOINT": "disjoint",
    "WITHIN": "within",
    "CONTAINS": "contains",
}
_NOCASE_FUNCS = frozenset({"lower", "casei"})


def prop_names(expr: Expr) -> set[str]:
    """The properties an expression reads.

    >>> sorted(prop_names(And((Compare("a", "=", 1), Not(IsNull("b"))))))
    ['a', 'b']
    """
    if isinstance(expr, And | Or):
        return set().union(*(prop_names(e) for e in expr.items))
    if isinstance(expr, Not):
        return prop_names(expr.item)
    if isinstance(expr, Bool):
        return set()
    return {expr.prop}


# ------------------------------------------------------------------ parsing


def _fail(value: Any, message: str, allowed: str = "a CQL2 filter over the queryables") -> NoReturn:
    raise InvalidInput("filter", value, allowed, f"filter: {message}")


def _text_parser() -> Any:
    """pygeofilter's CQL2-text parser, imported at first use: importing it builds its Lark
    grammar (1.4 s), which every process importing geogrid would otherwise pay."""
    from pygeofilter.parsers.cql2_text import parse  # heavy: grammar built on import

    return parse


def _json_parser() -> Any:
    """pygeofilter's CQL2-JSON parser, imported at first use (with the text parser's
    package)."""
    from pygeofilter.parsers.cql2_json import parse  # heavy: see _text_parser

    return parse


def parse_filter(
    text: str,
    lang: str | None,
    queryables: Mapping[str, Queryable],
    crs: str | None = None,
) -> Expr:
    """Parse and check a ``filter`` against the collection's ``queryables``.

    Parameters
    ----------
    text : str
        The filter (CQL2 text, or CQL2 JSON as text).
    lang : str, optional
        ``filter-lang``: ``cql2-text`` (default) or ``cql2-json``.
    queryables : mapping
        Property name → :class:`Queryable`; any other name is refused.
    crs : str, optional
        ``filter-crs``: only CRS84 (the default).

    Raises
    ------
    InvalidInput
        (parameter ``filter``, ``filter-lang`` or ``filter-crs``) for anything that cannot
        be parsed, names an unknown property, compares a property with a literal of
        another type, or uses something not supported.
    """
    lang = lang or FILTER_LANGS[0]
    if lang not in FILTER_LANGS:
        raise InvalidInput("filter-lang", lang, " or ".join(FILTER_LANGS))
    if crs not in (None, "", FILTER_CRS):
        raise InvalidInput("filter-crs", crs, FILTER_CRS)
    if not text or not text.strip():
        _fail(text, "empty filter")
    if len(text) > MAX_FILTER_LENGTH:
        _fail(f"{text[:40]}…", f"longer than {MAX_FILTER_LENGTH} characters")
    if "\x00" in text:
        _fail(text, "a NUL character")
    try:
        if lang == "cql2-json":
            try:
                doc = json.loads(text)
            except ValueError as exc:
                _fail(text, f"not JSON ({exc})")
            node = _json_parser()(_fix_json(doc))
        else:
            node = _text_parser()(text)
    except InvalidInput:
        raise
    except Exception as exc:  # lark and pygeofilter raise many kinds; all are a 400
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _fail(text, f"cannot parse as {lang}: {first}")
    return _Builder(queryables).expr(node, 0)


def _fix_json(node: Any) -> Any:
    """CQL2 JSON as the standard writes it → what pygeofilter 0.4 reads: ``bbox`` becomes
    a GeoJSON polygon (pygeofilter reads the four numbers in the wrong order), and
    ``between`` with three arguments becomes ``[prop, [low, high]]``."""
    if isinstance(node, list):
        return [_fix_json(n) for n in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"}:
        b = node["bbox"]
        if not isinstance(b, list) or len(b) not in (4, 6):
            _fail(json.dumps(node), "a bbox has 4 numbers (west, south, east, north)")
        w, s, e, n = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    out = {k: _fix_json(v) for k, v in node.items()}
    if str(out.get("op", "")).lower() == "between":
        args = out.get("args")
        if isinstance(args, list) and len(args) == 3:
            out["args"] = [args[0], [args[1], args[2]]]
    if "op" in out and isinstance(out["op"], str):
        out["op"] = _JSON_OPS.get(out["op"].lower(), out["op"])
    return out


#: CQL2 JSON operator names → the spelling pygeofilter 0.4's JSON parser expects
_JSON_OPS = {"isnull": "isNull", "casei": "casei"}


class _Builder:
    def __init__(self, queryables: Mapping[str, Queryable]):
        self.q = queryables

    # -------------------------------------------------------------- helpers
    def _prop(self, node: Any) -> tuple[Queryable, bool]:
        """The queryable a node names (and whether it is wrapped in CASEI/LOWER)."""
        nocase = False
        if isinstance(node, ast.Function) and node.name.lower() in _NOCASE_FUNCS:
            if len(node.arguments) != 1:
                _fail(node.name, f"{node.name.upper()} takes one argument")
            node, nocase = node.arguments[0], True
        if not isinstance(node, ast.Attribute):
            _fail(
                _show(node),
                f"expected a property on the left-hand side, got {_show(node)}; "
                "functions, arithmetic and literal-first comparisons are not supported",
            )
        name = node.name
        q = self.q.get(name)
        if q is None:
            raise InvalidInput(
                "filter",
                name,
                "one of " + ", ".join(self.q),
                f"filter: unknown property {name!r}; queryables: {', '.join(self.q)}",
            )
        if nocase and q.type != "string":
            _fail(name, f"CASEI applies to text properties, not {name!r} ({q.type})")
        return q, nocase

    def _literal(self, q: Queryable, value: Any, nocase: bool = False) -> Scalar:
        if isinstance(value, ast.Function) and value.name.lower() in _NOCASE_FUNCS:
            if len(value.arguments) != 1:
                _fail(value.name, f"{value.name.upper()} takes one argument")
            value = value.arguments[0]
            nocase = True
        if isinstance(value, ast.Node) or isinstance(value, values.Geometry | values.Envelope):
            _fail(
                _show(value),
                f"property {q.name!r} must be compared with a literal, got {_show(value)}",
            )
        t = q.type
        if t == "string":
            if not isinstance(value, str):
                _fail(value, f"property {q.name!r} is text: compare it with a quoted string")
            if "\x00" in value:
                _fail(value, "a NUL character")
            return value.lower() if nocase else value
        if t in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(value, f"property {q.name!r} is a number: compare it with a number")
            if isinstance(value, float) and not math.isfinite(value):
                _fail(value, "a finite number")
            if t == "integer" and isinstance(value, float):
                if not value.is_integer():
                    _fail(value, f"property {q.name!r} is an integer")
                value = int(value)
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                _fail(value, "a 64-bit integer")
            return value
        if t == "boolean":
            if not isinstance(value, bool):
                _fail(value, f"property {q.name!r} is a boolean")
            return value
        if t == "date-time":
            return _instant(q.name, value)
        _fail(q.name, f"the geometry property {q.name!r} only takes spatial predicates")
        raise AssertionError  # unreachable

    # -------------------------------------------------------------- nodes
    def expr(self, node: Any, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            _fail("…", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, bool):
            return Bool(node)
        if isinstance(node, ast.Include):
            return Bool(not node.not_)
        if isinstance(node, ast.And | ast.Or):
            items = tuple(self.expr(n, depth + 1) for n in (node.lhs, node.rhs))
            flat: list[Expr] = []
            cls = And if isinstance(node, ast.And) else Or
            for it in items:
                flat.extend(it.items if isinstance(it, cls) else (it,))
            return cls(tuple(flat))
        if isinstance(node, ast.Not):
            return Not(self.expr(node.sub_node, depth + 1))
        if isinstance(node, ast.Comparison):
            op = _COMPARE.get(type(node))
            if op is None:
                _fail(_show(node), f"unsupported comparison {type(node).__name__}")
            q, nocase = self._prop(node.lhs)
            nocase = nocase or _is_nocase(node.rhs)
            return Compare(q.name, op, self._literal(q, node.rhs, nocase), nocase)
        if isinstance(node, ast.Like):
            q, nocase = self._prop(node.lhs)
            if q.type != "string":
                _fail(q.name, f"LIKE applies to text properties, not {q.name!r} ({q.type})")
            pattern = node.pattern
            if isinstance(pattern, ast.Function):
                nocase = True
                pattern = self._literal(q, pattern, True)
            if not isinstance(pattern, str):
                _fail(_show(pattern), "LIKE takes a quoted pattern")
            return Like(
                q.name,
                pattern.lower() if nocase else pattern,
                nocase or node.nocase,
                bool(node.not_),
            )
        if isinstance(node, ast.In):
            q, nocase = self._prop(node.lhs)
            vals = tuple(self._literal(q, v, nocase) for v in node.sub_nodes)
            if not vals:
                _fail(q.name, "IN needs at least one value")
            if nocase:
                _fail(q.name, "CASEI with IN is not supported; use OR of comparisons")
            return InList(q.name, vals, bool(node.not_))
        if isinstance(node, ast.Between):
            q, nocase = self._prop(node.lhs)
            if q.type not in ("integer", "number", "date-time"):
                _fail(q.name, f"BETWEEN applies to numbers and times, not {q.name!r}")
            return Between(
                q.name, self._literal(q, node.low), self._literal(q, node.high), bool(node.not_)
            )
        if isinstance(node, ast.IsNull):
            q, _ = self._prop(node.lhs)
            return IsNull(q.name, bool(node.not_))
        if isinstance(node, ast.SpatialComparisonPredicate):
            return self._spatial(node)
        if isinstance(node, ast.TemporalPredicate):
            return self._temporal(node)
        _fail(_show(node), f"unsupported expression {type(node).__name__}")
        raise AssertionError  # unreachable

    def _spatial(self, node: Any) -> Expr:
        op = _SPATIAL.get(node.op.name)
        if op is None:
            _fail(node.op.name, f"unsupported spatial predicate S_{node.op.name}")
        lhs, rhs = node.lhs, node.rhs
        if not isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            lhs, rhs = rhs, lhs  # S_INTERSECTS(BBOX(…), geometry)
            op = {"within": "contains", "contains": "within"}.get(op, op)
        q, _ = self._prop(lhs)
        if q.type != "geometry":
            _fail(q.name, f"spatial predicates apply to the geometry property, not {q.name!r}")
        return Spatial(op, q.name, _geometry_wkt(rhs))

    def _temporal(self, node: Any) -> Expr:
        q, _ = self._prop(node.lhs)
        if q.type != "date-time":
            _fail(q.name, f"temporal predicates apply to date-time properties, not {q.name!r}")
        rhs = node.rhs
        if isinstance(rhs, values.Interval):
            start = None if rhs.start is None else _instant(q.name, rhs.start)
            end = None if rhs.end is None else _instant(q.name, rhs.end, end=True)
        else:
            start = _instant(q.name, rhs)
            end = _instant(q.name, rhs, end=True)
        p = q.name
        name = node.op.name  # e.g. AFTER, BEFORE, TINTERSECTS…
        if name in ("AFTER",):
            return Compare(p, ">", end) if end is not None else Bool(False)
        if name in ("BEFORE",):
            return Compare(p, "<", start) if start is not None else Bool(False)
        # t_intersects arrives as TOVERLAPS (pygeofilter maps it so); on an instant
        # property both mean "the instant lies in the interval"
        if name in ("TOVERLAPS", "TEQUALS", "DURING"):
            strict = name == "DURING"
            parts: list[Expr] = []
            if start is not None:
                parts.append(Compare(p, ">" if strict else ">=", start))
            if end is not None:
                parts.append(Compare(p, "<" if strict else "<=", end))
            return And(tuple(parts)) if parts else Not(IsNull(p))
        _fail(name, f"unsupported temporal predicate {name} on an instant property")
        raise AssertionError  # unreachable


def _is_nocase(node: Any) -> bool:
    return isinstance(node, ast.Function) and node.name.lower() in _NOCASE_FUNCS


def _instant(name: str, value: Any, *, end: bool = False) -> datetime:
    """A literal as an aware UTC datetime (a date is its first instant, or the last one
    when it ends an interval; an ISO string is read for clients that send quoted times)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            _fail(value, f"property {name!r} is a date-time: use TIMESTAMP('…Z') or DATE('…')")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            _fail(value.isoformat(), f"a time zone on the time compared with {name!r}")
        return value.astimezone(UTC)
    if isinstance(value, date):
        t = time.max if end else time.min
        return datetime.combine(value, t, tzinfo=UTC)
    _fail(_show(value), f"property {name!r} is a date-time: compare it with a time")
    raise AssertionError  # unreachable


def _geometry_wkt(node: Any) -> str:
    """A CRS84 geometry literal (GeoJSON-like, an envelope or ``BBOX(…)``) as WKT."""
    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        args = node.arguments
        if len(args) not in (4, 6) or not all(
            isinstance(a, int | float) and not isinstance(a, bool) for a in args
        ):
            _fail(_show(node), "BBOX takes 4 numbers (west, south, east, north)")
        w, s, e, n = (args[0], args[1], args[3], args[4]) if len(args) == 6 else args
        geo: dict[str, Any] = {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        }
    elif isinstance(node, values.Envelope):
        geo = node.geometry
    elif isinstance(node, values.Geometry):
        geo = node.geometry
    else:
        _fail(_show(node), "a spatial predicate takes a geometry literal (BBOX, POINT, POLYGON…)")
        raise AssertionError  # unreachable
    try:
        g = shapely.geometry.shape(geo)
    except Exception as exc:
        _fail(json.dumps(geo, default=str)[:200], f"not a geometry ({exc})")
    if g.is_empty:
        _fail(g.wkt[:200], "an empty geometry")
    x0, y0, x1, y1 = g.bounds
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x0 < -180 or x1 > 180:
        _fail(g.wkt[:200], "CRS84 longitudes within -180..180")
    if y0 < -90 or y1 > 90:
        _fail(g.wkt[:200], "CRS84 latitudes within -90..90")
    if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_valid:
        g = shapely.make_valid(g)
    if g.geom_type == "Polygon" and x0 > x1:  # pragma: no cover - shapely normalises
        _fail(g.wkt[:200], "west <= east")
    return g.wkt


def _show(node: Any) -> str:
    """A short text of an AST node for messages."""
    try:
        text = node.get_template() if isinstance(node, ast.Node) else repr(node)
    except Exception:
        text = type(node).__name__
    return str(text)[:120]
