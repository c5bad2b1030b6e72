"""The SQL form of the caller's scope (:class:`geogrid.core.scope.Scope`): one condition
builder every read of incidents, history, overdue lists, register rows and people applies.

The condition uses bound parameters only (the unit codes are never written into SQL
text); column names come from :data:`geogrid.core.hierarchy.ATTRIBUTION_COLUMNS` and the
alias is checked. Every store reader takes a REQUIRED ``scope`` so a query that forgets
it fails to type-check (and at run time with a TypeError).

Row-level security was considered (``SET LOCAL geogrid.units`` per transaction plus
policies on ``incident``/``incident_event``/``account``): it would also guard ad-hoc SQL,
but the bulk paths (COPY, metrics aggregates, the demo loader) run as the table owner,
which bypasses RLS unless ``FORCE ROW LEVEL SECURITY`` is set, and forcing it would put a
policy check on every row of the million-row aggregates. One builder applied by every
reader, with the scope a required argument, gives the same guarantee for the API's
paths at no cost to the aggregates.

>>> from geogrid.core.accounts import Account
>>> from geogrid.core.scope import Scope
>>> scope_condition(Scope.system())
('TRUE', {})
>>> sql, params = scope_condition(Scope.of(Account(1, "李梅", "worker", ("450902001001001",))))
>>> sql
'(i.grid_code = ANY(:_scope_units) OR i.community_code = ANY(:_scope_units) OR i.street_code = ANY(:_scope_units) OR i.district_code = ANY(:_scope_units))'
>>> params
{'_scope_units': ['450902001001001']}
>>> scope_condition(Scope.public(), personal=True)
('FALSE', {})
"""

from __future__ import annotations

import re
from typing import Any, Final

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.scope import Scope

__all__ = ["SCOPE_PARAM", "scope_condition", "scope_code_condition"]

#: the name of the bound parameter holding the scope's unit codes
SCOPE_PARAM: Final[str] = "_scope_units"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _ident(name: str, what: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier for {what}: {name!r}")
    return name


def scope_condition(
    scope: Scope, alias: str = "i", *, personal: bool = False
) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment limiting rows of ``incident`` (aliased ``alias``) to ``scope``.

    Parameters
    ----------
    scope
        The caller's scope.
    alias
        The alias of the table with the attribution columns (``grid_code`` …).
    personal
        True when the rows themselves are personal (accounts, register rows): a public
        scope then reads none; incidents (``personal=False``) are readable by the public
        for their public fields (the services strip the rest).

    Returns
    -------
    (sql, params)
        ``city`` → ``TRUE``; ``units`` → any attribution column is one of the caller's
        units (codes have one length per level, so a district code can only match
        ``district_code``); ``public`` → ``TRUE`` or ``FALSE`` (``personal``).
    """
    a = _ident(alias, "alias")
    if scope.kind == "city":
        return "TRUE", {}
    if scope.kind == "public":
        return ("FALSE" if personal else "TRUE"), {}
    if not scope.units:
        return "FALSE", {}
    ors = " OR ".join(f"{a}.{c} = ANY(:{SCOPE_PARAM})" for c in ATTRIBUTION_COLUMNS)
    return f"({ors})", {SCOPE_PARAM: list(scope.units)}


def scope_code_condition(scope: Scope, column: str) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment limiting rows with one unit-code column (e.g. ``au.unit_code`` of
    an account's grid) to ``scope``: the code is one of the caller's units or inside one
    (a hierarchical code starts with its parent's). Public scopes read none (these are
    personal rows).

    >>> from geogrid.core.accounts import Account
    >>> scope_code_condition(Scope.of(Account(2, "王", "street_admin", ("450902001",))),
    ...                      "au.unit_code")[0]
    'EXISTS (SELECT 1 FROM unnest(CAST(:_scope_units AS text[])) AS s(code) WHERE left(au.unit_code, length(s.code)) = s.code)'
    """
    parts = column.split(".")
    col = ".".join(_ident(p, "column") for p in parts)
    if scope.kind == "city":
        return "TRUE", {}
    if scope.kind == "public" or not scope.units:
        return "FALSE", {}
    return (
        f"EXISTS (SELECT 1 FROM unnest(CAST(:{SCOPE_PARAM} AS text[])) AS s(code) "
        f"WHERE left({col}, length(s.code)) = s.code)",
        {SCOPE_PARAM: list(scope.units)},
    )
