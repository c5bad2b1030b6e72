"""One way to print listings for every ``geogrid`` command: ``--format table|json|csv``.

``table`` is a rich table whose cells wrap (``overflow="fold"``) instead of being cut with
"…" on a narrow terminal (80 columns): codes and messages stay whole. ``json`` is a list of
objects (UTF-8, ISO 8601 date-times, NaN as null), ``csv`` a header row and one row per
item; both go to standard output with nothing else, for scripts.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from geogrid.errors import InvalidInput

__all__ = ["FORMATS", "FormatOpt", "check_format", "print_rows"]

#: the listing formats every listing command accepts
FORMATS = ("table", "json", "csv")

#: the ``--format`` option of a listing command
FormatOpt = Annotated[str, typer.Option("--format", help="table, json or csv")]


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    """``fmt`` when it is one of ``allowed``, else :class:`InvalidInput`."""
    if fmt not in allowed:
        raise InvalidInput("--format", fmt, ", ".join(allowed))
    return fmt


def _plain(value: Any) -> Any:
    """A JSON/CSV-ready value: None for missing, ISO 8601 for dates, Python scalars."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _plain(value.item())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _cell(value: Any) -> Any:
    value = _plain(value)
    if value is None:
        return ""
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def _records(rows: pd.DataFrame | Sequence[Mapping[str, Any]], columns: Sequence[str] | None):
    if isinstance(rows, pd.DataFrame):
        frame = rows.drop(columns=[c for c in ("geometry",) if c in rows.columns])
        cols = list(columns) if columns is not None else [str(c) for c in frame.columns]
        return cols, [dict(zip(cols, r, strict=True)) for r in frame[cols].itertuples(index=False)]
    items = [dict(r) for r in rows]
    cols = (
        list(columns) if columns is not None else list(dict.fromkeys(k for r in items for k in r))
    )
    return cols, [{c: r.get(c) for c in cols} for r in items]


def print_rows(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    fmt: str = "table",
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a listing as a wrapping table, JSON or CSV.

    Parameters
    ----------
    rows : DataFrame or sequence of mappings
        The items (a ``geometry`` column is left out).
    fmt : str
        ``table``, ``json`` or ``csv`` (:data:`FORMATS`).
    columns : sequence of str, optional
        The columns, in order (default: all).
    title : str, optional
        The table's title (tables only).
    console : rich Console, optional
        Where tables go (default: standard output).

    Raises
    ------
    InvalidInput
        An unknown ``fmt``.
    """
    check_format(fmt)
    cols, records = _records(rows, columns)
    if fmt == "json":
        data = [{c: _plain(r[c]) for c in cols} for r in records]
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        for r in records:
            writer.writerow([_cell(r[c]) for c in cols])
        return
    table = Table(title=title)
    for c in cols:
        table.add_column(c, overflow="fold", no_wrap=False)
    for r in records:
        table.add_row(*(_text(r[c]) for c in cols))
    (console or Console()).print(table, highlight=False)
