"""The incident category catalogue (事件类别): names, time limits, workload, routing level.

The catalogue ships as ``geogrid/data/categories.csv``; a city's own catalogue is a
``path`` argument (the services pass ``settings.city.categories``, which
``GEOGRID_CATEGORIES`` or the city file sets).

Columns
-------
code : str
    Stable identifier, lower-case ``[a-z][a-z0-9_]*`` (``sanitation``, ``vendor`` …).
name_zh, name_en : str
    Display names.
limit_hours : float
    Disposal time limit (处置时限) in hours from the report; must be > 0.
effort : float
    Workload weight of one incident (1.0 = typical); must be > 0.
escalate_level : str
    The level that must handle it: ``grid``, ``community``, ``street`` or ``district``.
share : float
    Typical proportion among all incidents (used by the demo); ≥ 0, not all 0.
    Shares need not sum to 1; :func:`load_categories` leaves them as written.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from geogrid.core.hierarchy import LEVELS_UP
from geogrid.errors import FileInputError, RowError

__all__ = ["CATEGORY_COLUMNS", "DEFAULT_CATEGORIES_PATH", "category_codes", "load_categories"]

#: Columns of the catalogue file, in order.
CATEGORY_COLUMNS = (
    "code",
    "name_zh",
    "name_en",
    "limit_hours",
    "effort",
    "escalate_level",
    "share",
)
#: The packaged catalogue.
DEFAULT_CATEGORIES_PATH = Path(__file__).resolve().parents[1] / "data" / "categories.csv"
_CODE = re.compile(r"[a-z][a-z0-9_]*")


def _resolve(path: str | Path | None) -> Path:
    return Path(path) if path is not None else DEFAULT_CATEGORIES_PATH


def load_categories(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate the category catalogue.

    Parameters
    ----------
    path : str or Path, optional
        A CSV with the columns in :data:`CATEGORY_COLUMNS` (UTF-8, header row).
        Default: the packaged catalogue.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``code`` (file order), columns ``name_zh, name_en, limit_hours, effort,
        escalate_level, share``; ``limit_hours``, ``effort`` and ``share`` are floats.
        A fresh copy each call.

    Raises
    ------
    FileInputError
        The file is missing or unreadable, a column is missing, or rows are invalid
        (every bad row and field is listed).

    Examples
    --------
    >>> cats = load_categories()
    >>> cats.loc["sanitation", "escalate_level"]
    'grid'
    >>> bool((cats["limit_hours"] > 0).all())
    True
    """
    p = _resolve(path).resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise FileInputError(str(p), f"cannot read the category catalogue: {exc}") from None
    return _load(str(p), mtime).copy()


def category_codes(path: str | Path | None = None) -> list[str]:
    """The category codes of the catalogue (file order).

    >>> "sanitation" in category_codes()
    True
    """
    return list(load_categories(path).index)


@lru_cache(maxsize=8)
def _load(path: str, mtime: int) -> pd.DataFrame:  # mtime: cache key only
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise FileInputError(path, f"cannot parse the category catalogue: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in CATEGORY_COLUMNS if c not in raw.columns]
    if missing:
        raise FileInputError(
            path,
            f"missing column(s) {', '.join(missing)}; expected {', '.join(CATEGORY_COLUMNS)}",
        )
    raw = raw[list(CATEGORY_COLUMNS)].apply(lambda s: s.str.strip())
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(raw.itertuples(index=False), start=1):
        code = row.code
        if not _CODE.fullmatch(code):
            errors.append(RowError(path, i, "code", "expected lower-case [a-z][a-z0-9_]*", code))
        elif code in seen:
            errors.append(
                RowError(path, i, "code", f"duplicate code (first on row {seen[code]})", code)
            )
        else:
            seen[code] = i
        if not row.name_zh:
            errors.append(RowError(path, i, "name_zh", "must not be empty", row.name_zh))
        for col, allow_zero in (("limit_hours", False), ("effort", False), ("share", True)):
            value = getattr(row, col)
            num = pd.to_numeric(value, errors="coerce")
            ok = pd.notna(num) and num < float("inf") and (num >= 0 if allow_zero else num > 0)
            if not ok:
                what = "a number ≥ 0" if allow_zero else "a positive number"
                errors.append(RowError(path, i, col, f"expected {what}", value))
        if row.escalate_level not in LEVELS_UP:
            errors.append(
                RowError(
                    path,
                    i,
                    "escalate_level",
                    f"expected one of {', '.join(LEVELS_UP)}",
                    row.escalate_level,
                )
            )
    if not errors and len(raw) == 0:
        errors.append(RowError(path, None, None, "the catalogue has no categories"))
    if errors:
        raise FileInputError(path, errors)
    out = raw.set_index("code")
    for col in ("limit_hours", "effort", "share"):
        out[col] = out[col].astype(float)
    if out["share"].sum() <= 0:
        raise FileInputError(path, "column 'share': at least one share must be > 0")
    out.index.name = "code"
    return out
